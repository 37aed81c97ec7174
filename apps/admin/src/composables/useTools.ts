/**
 * The tools list: every tool (inactive ones too, deleted ones not), a page at a time, filtered by a search
 * and a tool type; and the inline switches that turn a tool on or off and feature it, one request each,
 * the row showing the new state once the API has it.
 */

import { useInfiniteQuery, useQueryClient } from '@tanstack/vue-query'
import { computed, type Ref, ref } from 'vue'
import { api, unwrap } from '@/api'

export interface ToolFilters {
  q: string
  type: string | null
}

export function useToolsList(filters: Ref<ToolFilters>) {
  const tools = useInfiniteQuery({
    queryKey: ['admin-tools', filters],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/admin/tools', {
          params: { query: { q: filters.value.q || null, type: filters.value.type, deleted: false, limit: 25, cursor: pageParam } },
        }),
      ),
    getNextPageParam: (page) => page.next_cursor ?? null,
  })
  const rows = computed(() => tools.data.value?.pages.flatMap((page) => page.items) ?? [])
  return { tools, rows }
}

export type ToolSwitch = 'is_active' | 'is_featured'

/** `onFailed` gets what a refused switch threw (a `ProblemError` mostly), for `problemText`. */
export function useToolSwitches(onFailed: (problem: unknown) => void) {
  const queries = useQueryClient()
  // `${toolId}:${field}` of the switches on their way.
  const pending = ref(new Set<string>())

  async function set(toolId: string, field: ToolSwitch, value: boolean): Promise<void> {
    const key = `${toolId}:${field}`
    pending.value = new Set([...pending.value, key])
    try {
      await unwrap(api.PATCH('/api/admin/tools/{tool_id}', { params: { path: { tool_id: toolId } }, body: { [field]: value } }))
      await queries.invalidateQueries({ queryKey: ['admin-tools'] })
      queries.removeQueries({ queryKey: ['admin-tool', toolId] })
    } catch (problem) {
      onFailed(problem)
    } finally {
      const next = new Set(pending.value)
      next.delete(key)
      pending.value = next
    }
  }

  return { set, busy: (toolId: string, field: ToolSwitch) => pending.value.has(`${toolId}:${field}`) }
}
