/** A button's action: busy while it runs, its problem kept for the page to show. */

import { ref } from 'vue'
import { type Problem, ProblemError, toProblem } from '@/api/problem'

export function useAsync() {
  const busy = ref(false)
  const problem = ref<Problem | null>(null)
  async function run<T>(action: () => Promise<T>): Promise<T | undefined> {
    busy.value = true
    problem.value = null
    try {
      return await action()
    } catch (error) {
      problem.value = error instanceof ProblemError ? error.problem : toProblem(null, 0)
      return undefined
    } finally {
      busy.value = false
    }
  }
  return { busy, problem, run }
}
