import { describe, expect, it } from 'vitest'
import { ref } from 'vue'
import { ProblemError, toProblem } from '@/api/problem'
import { useQueryProblem } from './useQueryProblem'

describe('useQueryProblem', () => {
  it('is the failure of a query with nothing to show', () => {
    const problem = useQueryProblem({ data: ref(undefined), error: ref(new ProblemError(toProblem({ code: 'oops' }, 500))) })
    expect(problem.value).toMatchObject({ status: 500, code: 'oops' })
  })

  it('makes anything else thrown a network problem', () => {
    expect(useQueryProblem({ data: ref(undefined), error: ref(new TypeError('Failed to fetch')) }).value?.code).toBe('network')
  })

  it('is null while there is no error, or data to keep showing', () => {
    expect(useQueryProblem({ data: ref(undefined), error: ref(null) }).value).toBeNull()
    expect(useQueryProblem({ data: ref({ items: [] }), error: ref(new TypeError('offline')) }).value).toBeNull()
  })
})
