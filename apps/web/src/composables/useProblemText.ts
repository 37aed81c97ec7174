/** A problem as a sentence people read: the platform's `code` picks one the app knows; otherwise the server's own text. */

import { useI18n } from 'vue-i18n'
import { problemOf } from '@/api/problem'

/** What a sentence is made from (a `Problem` has it). */
export interface ProblemLike {
  code: string | null
  detail: string | null
  retryAfterSeconds: number | null
}

const KNOWN: Record<string, string> = {
  insufficient_credits: 'errors.insufficientCredits',
  package_unavailable: 'errors.packageUnavailable',
  network: 'errors.network',
  not_found: 'errors.notFound',
  invalid_credentials: 'errors.invalidCredentials',
  email_taken: 'errors.emailTaken',
  session_expired: 'errors.sessionEnded',
  image_required: 'errors.imageRequired',
  prompt_required: 'errors.promptRequired',
  prompt_too_long: 'errors.promptTooLong',
  wrong_password: 'errors.wrongPassword',
  password_not_set: 'errors.passwordNotSet',
  invalid_avatar: 'errors.invalidAvatar',
}
const RATE_LIMITED = new Set(['rate_limited', 'http_429', 'too_many_tasks'])

export function useProblemText() {
  const { t } = useI18n()

  function text(problem: ProblemLike): string {
    if (problem.code && RATE_LIMITED.has(problem.code)) {
      if (problem.code === 'too_many_tasks' && problem.detail) return problem.detail
      const seconds = problem.retryAfterSeconds ?? 60
      return t('errors.rateLimited', { n: seconds }, seconds)
    }
    const key = problem.code ? KNOWN[problem.code] : undefined
    if (key) return t(key)
    return problem.detail || t('errors.generic')
  }

  /** What went wrong with a failed call (a `ProblemError`, or anything else: a network failure). */
  function describe(error: unknown): string {
    const problem = problemOf(error)
    return problem ? text(problem) : t('errors.generic')
  }

  return { text, describe }
}
