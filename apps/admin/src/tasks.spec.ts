import { describe, expect, it } from 'vitest'
import { dayOf, periodOfDays, startOfDay } from './tasks'

describe('the task search period', () => {
  it('covers whole local days, the last one included', () => {
    const period = periodOfDays('2026-03-01', '2026-03-02')
    expect(period.created_from).toBe(new Date(2026, 2, 1).toISOString())
    expect(period.created_to).toBe(new Date(2026, 2, 3).toISOString())
  })

  it('is open on a side left empty', () => {
    expect(periodOfDays('', '2026-12-31').created_from).toBeNull()
    expect(periodOfDays('2026-12-31', '').created_to).toBeNull()
  })

  it('crosses a month end', () => {
    expect(periodOfDays('2026-01-31', '2026-01-31').created_to).toBe(new Date(2026, 1, 1).toISOString())
  })

  it('ignores text that is not a day', () => {
    expect(startOfDay('yesterday')).toBeNull()
    expect(periodOfDays('1/2/2026', 'x')).toEqual({ created_from: null, created_to: null })
  })

  it('writes a picked day back as the URL keeps it', () => {
    expect(dayOf(new Date(2026, 11, 4, 15, 30).getTime())).toBe('2026-12-04')
  })
})
