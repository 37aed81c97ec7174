import { describe, expect, it } from 'vitest'
import { ProblemError, problemOf, toProblem, unwrap } from './problem'

describe('toProblem', () => {
  it('keeps what a problem+json answer says', () => {
    const problem = toProblem(
      { type: 'about:blank', title: 'Conflict', status: 409, detail: 'this email is registered', code: 'email_taken', field: 'email' },
      409,
    )
    expect(problem).toEqual({
      status: 409,
      code: 'email_taken',
      title: 'Conflict',
      detail: 'this email is registered',
      field: 'email',
      retryAfterSeconds: null,
    })
  })

  it('names a failure without a body by its status, and a network failure as such', () => {
    expect(toProblem(null, 502).code).toBe('http_502')
    expect(toProblem(undefined, 0).code).toBe('network')
  })

  it('reads Retry-After seconds', () => {
    expect(toProblem({ code: 'rate_limited' }, 429, '17').retryAfterSeconds).toBe(17)
    expect(toProblem({}, 429, 'soon').retryAfterSeconds).toBeNull()
  })
})

describe('unwrap', () => {
  it('gives the data of a success and throws the problem of a failure', async () => {
    const ok = new Response('{}', { status: 200 })
    await expect(unwrap(Promise.resolve({ data: { balance: 5 }, response: ok }))).resolves.toEqual({ balance: 5 })

    const refused = new Response('{}', { status: 402, headers: { 'Retry-After': '3' } })
    const failure = unwrap(Promise.resolve({ error: { code: 'insufficient_credits', title: 'No' }, response: refused }))
    await expect(failure).rejects.toBeInstanceOf(ProblemError)
    await expect(failure).rejects.toMatchObject({ problem: { status: 402, code: 'insufficient_credits', retryAfterSeconds: 3 } })
  })

  it('turns a thrown fetch into a network problem', async () => {
    await expect(unwrap(Promise.reject(new TypeError('Failed to fetch')))).rejects.toMatchObject({ problem: { code: 'network' } })
  })
})

describe('problemOf', () => {
  it('is the problem of a ProblemError, a network problem for anything else, null for no error', () => {
    const problem = toProblem({ code: 'not_found' }, 404)
    expect(problemOf(new ProblemError(problem))).toBe(problem)
    expect(problemOf(new TypeError('Failed to fetch'))).toMatchObject({ status: 0, code: 'network' })
    expect(problemOf(null)).toBeNull()
    expect(problemOf(undefined)).toBeNull()
  })
})
