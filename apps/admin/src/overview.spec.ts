import { describe, expect, it } from 'vitest'
import { chartSummary, revenueText, spansDays } from './overview'

describe('the overview revenue', () => {
  it('reads dollars from cents', () => {
    expect(revenueText([{ currency: 'USD', amount_minor: 1234 }], 'en')).toBe('$12.34')
  })

  it('reads yen as they are: the currency has no minor unit', () => {
    expect(revenueText([{ currency: 'JPY', amount_minor: 1200 }], 'en')).toBe('¥1,200')
    expect(revenueText([{ currency: 'jpy', amount_minor: 1200 }], 'en')).toBe('¥1,200')
  })

  it('shows each currency, and a dash when nothing was sold', () => {
    expect(revenueText([{ currency: 'USD', amount_minor: 999 }, { currency: 'JPY', amount_minor: 500 }], 'en')).toBe('$9.99 · ¥500')
    expect(revenueText([], 'en')).toBe('—')
  })
})

describe('the tasks chart', () => {
  const at = (hour: number) => `2026-12-07T${String(hour).padStart(2, '0')}:00:00Z`

  it('adds up the window and scales to its busiest bucket', () => {
    const summary = chartSummary(
      [
        { at: at(1), created: 4, completed: 3, failed: 1 },
        { at: at(2), created: 9, completed: 7, failed: 2 },
      ],
      3600,
    )
    expect(summary).toMatchObject({ created: 13, failed: 3, peak: 9 })
  })

  it('keeps a scale of one when nothing ran, so no bar divides by zero', () => {
    expect(chartSummary([{ at: at(1), created: 0, completed: 0, failed: 0 }], 3600)).toEqual({
      created: 0,
      failed: 0,
      peak: 1,
      rate: { tasks: 0, per: 'minute' },
    })
    expect(chartSummary([], 3600).rate).toEqual({ tasks: 0, per: 'minute' })
  })

  it('gives its pace in the largest unit that still counts a whole task', () => {
    const hours = (created: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ at: at(i), created: i === 0 ? created : 0, completed: 0, failed: 0 }))
    expect(chartSummary(hours(240, 2), 60).rate).toEqual({ tasks: 120, per: 'minute' })
    expect(chartSummary(hours(120, 2), 3600).rate).toEqual({ tasks: 1, per: 'minute' })
    expect(chartSummary(hours(36, 24), 3600).rate).toEqual({ tasks: 1.5, per: 'hour' })
    expect(chartSummary(hours(4, 24), 3600).rate).toEqual({ tasks: 4, per: 'day' })
  })

  it('dates its labels when the window spans most of a day or more', () => {
    const buckets = (n: number) => Array.from({ length: n }, (_, i) => ({ at: at(i % 24), created: 1, completed: 1, failed: 0 }))
    expect(spansDays(buckets(60), 60)).toBe(false)
    expect(spansDays(buckets(96), 900)).toBe(true)
    expect(spansDays(buckets(28), 6 * 3600)).toBe(true)
  })
})
