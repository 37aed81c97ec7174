/** The user's credit history by task: one group per root task (a chain of tasks started from each other's
 * outputs), other entries alone; and the tools' titles in the page's locale, to name the groups. */

import { useInfiniteQuery, useQuery } from '@tanstack/vue-query'
import { computed, type Ref } from 'vue'
import { useI18n } from 'vue-i18n'
import { api } from '@/api/client'
import { unwrap } from '@/api/problem'
import type { components } from '@/api/schema'

export type TransactionGroup = components['schemas']['TransactionGroup']

export function useTransactionGroups() {
  const locale = useI18n().locale as Ref<string>
  const groups = useInfiniteQuery({
    queryKey: ['transaction-groups'],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/credits/transaction-groups', {
          params: { query: { limit: 10, ...(pageParam ? { cursor: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (page) => page.next_cursor ?? null,
  })
  const tools = useQuery({
    queryKey: ['tool-titles', locale],
    queryFn: () => unwrap(api.GET('/api/tools', { params: { query: { locale: locale.value as never, limit: 100 } } })),
  })
  const items = computed(() => groups.data.value?.pages.flatMap((page) => page.items) ?? [])
  const titles = computed(() => new Map((tools.data.value?.items ?? []).map((tool) => [tool.slug, tool.title])))

  /** The group's tool as users know it; the slug when the tool is no longer listed. */
  function toolTitle(group: TransactionGroup): string | null {
    return group.tool_slug ? (titles.value.get(group.tool_slug) ?? group.tool_slug) : null
  }

  return { groups, items, toolTitle }
}
