/**
 * Errors as people read them. The platform answers errors as problem+json (`{title, status, detail, code,
 * field, …}`); `toProblem` turns whatever a call produced (a problem body, a network failure) into one
 * shape, and the `code` picks a translated sentence where the app knows a better one than `detail`.
 */

export interface Problem {
  status: number
  code: string
  title: string
  detail: string | null
  field: string | null
  retryAfterSeconds: number | null
}

export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ?? problem.title)
  }
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null
}

export function toProblem(body: unknown, status: number, retryAfter: string | null = null): Problem {
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {}
  return {
    status,
    code: text(record.code) ?? (status === 0 ? 'network' : `http_${status}`),
    title: text(record.title) ?? (status === 0 ? 'Network error' : `Error ${status}`),
    detail: text(record.detail),
    field: text(record.field),
    retryAfterSeconds: retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : null,
  }
}

/** The body of a successful `openapi-fetch` call, or a thrown `ProblemError` for its error. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response }
  try {
    result = await call
  } catch {
    throw new ProblemError(toProblem(null, 0))
  }
  if (result.response.ok) return result.data as T
  throw new ProblemError(toProblem(result.error, result.response.status, result.response.headers.get('Retry-After')))
}

/** What a failed query or action went wrong with: its problem, or a network problem for anything else; null for no error. */
export function problemOf(error: unknown): Problem | null {
  if (error === null || error === undefined) return null
  return error instanceof ProblemError ? error.problem : toProblem(null, 0)
}
