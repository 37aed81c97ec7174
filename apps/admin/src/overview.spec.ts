import { describe, expect, it } from 'vitest'
import { revenueText } from './overview'

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
