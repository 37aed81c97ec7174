/**
 * A credit adjustment as a form: one Idempotency-Key per intended adjustment (`useCreationKey`), kept until it
 * succeeds, so a retry (a double click, a timeout, "try again") applies it once; a new key after success or a
 * change of amount or reason.
 */

import { ref } from 'vue'
import { api, unwrap } from '@/api'
import { useCreationKey } from '@/composables/useCreationKey'

export function useAdjustment(userId: () => string, onApplied: () => void) {
  const amount = ref<number | null>(null)
  const reason = ref('')
  const busy = ref(false)
  /** Why the last attempt failed (a `ProblemError`, or whatever it threw), for `problemText`; null after success. */
  const error = ref<unknown>(null)
  const adjustment = useCreationKey()

  async function apply(): Promise<boolean> {
    if (amount.value === null || amount.value === 0 || reason.value.trim() === '') return false
    busy.value = true
    error.value = null
    try {
      const body = { amount: amount.value, reason: reason.value.trim() }
      await unwrap(
        api.POST('/api/admin/users/{user_id}/credits', {
          params: { path: { user_id: userId() } },
          body,
          headers: { 'Idempotency-Key': adjustment.keyFor(body) },
        }),
      )
      amount.value = null
      reason.value = ''
      adjustment.succeeded()
      onApplied()
      return true
    } catch (problem) {
      error.value = problem
      return false
    } finally {
      busy.value = false
    }
  }

  return { amount, reason, busy, error, apply }
}
