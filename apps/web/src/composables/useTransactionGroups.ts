/** The user's credit history by task: one group per root task (a chain of tasks started from each other's
 * outputs), other entries alone; and the tools' titles in the page's locale, to name the groups. */

import { useInfiniteQuery } from '@tanstack/vue-query'
import { computed } from 'vue'
import { api } from '@/api/client'
import { unwrap } from '@/api/problem'
import type { components } from '@/api/schema'
import { useToolTitles } from '@/composables/useCatalog'

export type TransactionGroup = components['schemas']['TransactionGroup']

export function useTransactionGroups() {
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
  const { titleOf } = useToolTitles()
  const items = computed(() => groups.data.value?.pages.flatMap((page) => page.items) ?? [])

  /** The group's tool as users know it; the slug when the tool is no longer listed. */
  function toolTitle(group: TransactionGroup): string | null {
    return group.tool_slug ? titleOf(group.tool_slug) : null
  }

  return { groups, items, toolTitle }
}
