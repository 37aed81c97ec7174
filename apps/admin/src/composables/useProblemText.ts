/**
 * A refusal as the admin reads it, in their language. The platform's problems carry English `title`s
 * ("Not Found", or our own "Network error" / "Error 503" when there was no body): those never reach the
 * page. An unreachable platform says so in the admin's language; the server's `detail` (a sentence it
 * wrote for people) is shown as it is; without one, a translated sentence with the HTTP status.
 */

import { useI18n } from 'vue-i18n'
import { type Problem, ProblemError } from '@/api'

export type Translate = (key: string, values?: Record<string, unknown>) => string

function asProblem(value: unknown): Problem | null {
  if (value instanceof ProblemError) return value.problem
  if (typeof value !== 'object' || value === null) return null
  const record = value as Record<string, unknown>
  return typeof record.status === 'number' && typeof record.code === 'string' ? (value as Problem) : null
}

/** What to tell the admin about `problem` (a `Problem`, a thrown `ProblemError`, or anything else thrown). */
export function problemText(problem: unknown, t: Translate): string {
  const value = asProblem(problem)
  if (value === null) return t('errors.generic')
  if (value.code === 'network' || value.status === 0) return t('errors.network')
  if (value.detail) return value.detail
  return t('errors.status', { status: value.status })
}

/** `problemText` with the component's `t`: `const problemText = useProblemText()` in a `setup`. */
export function useProblemText(): (problem: unknown) => string {
  const { t } = useI18n()
  return (problem) => problemText(problem, t)
}
