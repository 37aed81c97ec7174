import { describe, expect, it } from 'vitest'
import { shortAge, sparkPoints, usage } from './useQueueMonitor'

describe('the queue monitor figures', () => {
  it('shows a limit as used over allowed, and how full it is', () => {
    expect(usage(3, 4)).toEqual({ label: '3 / 4', percent: 75 })
    expect(usage(9, 4).percent).toBe(100)
    expect(usage(2, null)).toEqual({ label: '2 / ∞', percent: null })
  })

  it('writes ages short', () => {
    expect(shortAge(4.4)).toBe('4 s')
    expect(shortAge(420)).toBe('7 min')
    expect(shortAge(3 * 3600)).toBe('3 h')
    expect(shortAge(2 * 86_400)).toBe('2 d')
  })

  it('draws a trend oldest to newest, 0 at the bottom, the peak at the top', () => {
    expect(sparkPoints([0, 5, 10], 100, 20)).toBe('0.0,20.0 50.0,10.0 100.0,0.0')
    expect(sparkPoints([], 100, 20)).toBe('')
    expect(sparkPoints([0, 0], 10, 20)).toBe('0.0,20.0 10.0,20.0')
  })
})
