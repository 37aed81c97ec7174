/** What a query's failure means for its page. */

import { computed, type ComputedRef, type Ref } from 'vue'
import { type Problem, problemOf } from '@/api/problem'

/**
 * The query's problem when it failed with nothing to show (null otherwise): the page shows it, with a
 * Retry, instead of its empty state. A failed background refresh keeps the data it already had on screen.
 */
export function useQueryProblem(query: { data: Ref<unknown>; error: Ref<unknown> }): ComputedRef<Problem | null> {
  return computed(() => (query.data.value === undefined ? problemOf(query.error.value) : null))
}
