import { describe, expect, it } from 'vitest'
import { auditQuery, subjectRoute } from './useAuditLog'

describe('the audit log filters', () => {
  it('sends only what is filled in, trimmed', () => {
    expect(auditQuery({ service: 'credits', action: ' credits.adjusted ', subject: '', actor: '' })).toEqual({
      service: 'credits',
      action: 'credits.adjusted',
      subject_id: null,
      actor_id: null,
    })
  })

  it('ignores a service the platform does not have', () => {
    expect(auditQuery({ service: 'billing', action: '', subject: '', actor: '' }).service).toBeNull()
  })

  it('links users, tasks and tools to their pages, nothing else', () => {
    expect(subjectRoute({ subject_type: 'user', subject_id: 'u1' })).toEqual({ name: 'user', params: { id: 'u1' } })
    expect(subjectRoute({ subject_type: 'task', subject_id: 't1' })?.name).toBe('task')
    expect(subjectRoute({ subject_type: 'event', subject_id: 'e1' })).toBeNull()
  })
})
