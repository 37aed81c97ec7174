import { describe, expect, it } from 'vitest'
import { callsByStep, formatBody, statusKind, type StepJobCalls } from './useProviderCalls'

function job(stepId: string, jobId: string): StepJobCalls {
  return {
    job_id: jobId, step_id: stepId, attempt: 1, step_type: 'image-gen', provider: 'openai', model: 'gpt-image-1',
    status: 'completed', retries: 0, calls: [],
  }
}

describe('provider diagnostics', () => {
  it('groups step jobs by step, keeping their order', () => {
    const grouped = callsByStep([job('a', '1'), job('b', '2'), job('a', '3')])
    expect([...grouped.keys()]).toEqual(['a', 'b'])
    expect(grouped.get('a')?.map((j) => j.job_id)).toEqual(['1', '3'])
  })

  it('colours a status by what it means', () => {
    expect(statusKind(200)).toBe('success')
    expect(statusKind(429)).toBe('warning')
    expect(statusKind(503)).toBe('error')
    expect(statusKind(null)).toBe('error')
  })

  it('shows JSON indented and markers as they are', () => {
    expect(formatBody({ a: [1] })).toBe('{\n  "a": [\n    1\n  ]\n}')
    expect(formatBody('<image/png body, 10 bytes>')).toBe('<image/png body, 10 bytes>')
    expect(formatBody(null)).toBe('')
  })
})
