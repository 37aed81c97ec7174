/**
 * One way to send an admin's form: `saving` while the request runs, and when it is refused, the API's
 * problem and its field errors (shown beside the fields), or a network problem (status 0) when the
 * platform could not be reached. Each form composable says what to send and what to do with the answer.
 */
import { ref } from 'vue'
import { type Problem, toProblem } from '@/api'
import { fieldErrors } from '@/tools/toolForm'

type Answer<T> = { data?: T; error?: unknown; response: Response }

export function useSubmission() {
  const saving = ref(false)
  const errors = ref<Record<string, string>>({})
  const problem = ref<Problem | null>(null)

  /** Forgets the last refusal (before a new attempt, or when the form is discarded). */
  function clear(): void {
    errors.value = {}
    problem.value = null
  }

  /** Sends `request`; its data, or null with `errors`/`problem` saying why not. */
  async function submit<T>(request: () => Promise<Answer<T>>): Promise<T | null> {
    clear()
    saving.value = true
    try {
      const result = await request()
      if (!result.response.ok || !result.data) {
        problem.value = toProblem(result.error, result.response.status)
        errors.value = fieldErrors(result.error)
        return null
      }
      return result.data
    } catch {
      problem.value = toProblem(null, 0)
      return null
    } finally {
      saving.value = false
    }
  }

  return { saving, errors, problem, clear, submit }
}
