/**
 * Tool types: the list (with how many tools each has), and the editor's save and delete. A delete the API
 * refuses because tools still use the type (409 `tool_type_in_use`) comes back as that refusal, for the
 * page to say so.
 */

import { useInfiniteQuery, useQueryClient } from '@tanstack/vue-query'
import { computed } from 'vue'
import { api, type Problem, toProblem, unwrap } from '@/api'
import { type ToolTypeForm, toolTypeBody } from '@/tools/toolTypeForm'
import { useCreationKey } from '@/composables/useCreationKey'
import { useSubmission } from '@/composables/useSubmission'

export function useToolTypes() {
  const queries = useQueryClient()
  const list = useInfiniteQuery({
    queryKey: ['admin-tool-types', 'pages'],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) => unwrap(api.GET('/api/admin/tool-types', { params: { query: { limit: 100, cursor: pageParam } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  })
  const rows = computed(() => list.data.value?.pages.flatMap((page) => page.items) ?? [])
  const { saving, errors, problem, submit } = useSubmission()
  const creation = useCreationKey()

  async function refresh(): Promise<void> {
    // The editor's type choices and the tools list show types too.
    await queries.invalidateQueries({ queryKey: ['admin-tool-types'] })
  }

  /** Creates (no id) or changes a tool type; true when stored, else `errors`/`problem` say why. */
  async function save(form: ToolTypeForm, id: string | null): Promise<boolean> {
    const body = toolTypeBody(form)
    const stored = await submit(() =>
      id
        ? api.PATCH('/api/admin/tool-types/{type_id}', { params: { path: { type_id: id } }, body })
        : api.POST('/api/admin/tool-types', { body, headers: { 'Idempotency-Key': creation.keyFor(body) } }),
    )
    if (stored && !id) creation.succeeded()
    if (stored) await refresh()
    return stored !== null
  }

  /** Deletes a tool type: null when gone, else the refusal (`tool_type_in_use` while tools use it). */
  async function remove(id: string): Promise<Problem | null> {
    try {
      const result = await api.DELETE('/api/admin/tool-types/{type_id}', { params: { path: { type_id: id } } })
      if (!result.response.ok) return toProblem(result.error, result.response.status)
      await refresh()
      return null
    } catch {
      return toProblem(null, 0)
    }
  }

  return { list, rows, errors, problem, saving, save, remove }
}
