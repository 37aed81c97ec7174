import { describe, expect, it } from 'vitest'
import { blankPackage, type CreditPackage, decimalsOf, formatPrice, fromPackage, packageBody, packageProblems, toMinor, withActive } from './packageForm'

const stored: CreditPackage = {
  id: 'p-1',
  name: 'Starter',
  credits: 500,
  price_minor: 999,
  currency: 'USD',
  stripe_price_id: 'price_123',
  is_active: true,
  sort_order: 2,
}

describe('a credit package form', () => {
  it('shows the price in the major unit and sends it back in cents', () => {
    const form = fromPackage(stored)
    expect(form.price).toBe(9.99)
    expect(packageBody(form)).toEqual({ name: 'Starter', credits: 500, price_minor: 999, currency: 'USD', stripe_price_id: 'price_123', is_active: true, sort_order: 2 })
  })

  it('uses the currency decimals: none for yen, three for dinars', () => {
    expect(decimalsOf('JPY')).toBe(0)
    expect(decimalsOf('BHD')).toBe(3)
    expect(toMinor(1200, 'JPY')).toBe(1200)
    expect(toMinor(0.1 + 0.2, 'EUR')).toBe(30) // no floating-point cents
    expect(formatPrice(1200, 'JPY', 'en')).toBe('¥1,200')
  })

  it('upper-cases the currency and sends an empty Stripe price as null', () => {
    const form = { ...blankPackage(), name: ' Pro ', credits: 2000, price: 19.5, currency: 'eur', stripePriceId: ' ' }
    expect(packageBody(form)).toMatchObject({ name: 'Pro', currency: 'EUR', price_minor: 1950, stripe_price_id: null })
  })

  it('switches a package on or off without touching anything else', () => {
    expect(withActive(stored, false)).toEqual({ ...packageBody(fromPackage(stored)), is_active: false })
  })

  it('says what the server would refuse', () => {
    expect(packageProblems(blankPackage())).toEqual({ name: 'nameRequired', credits: 'creditsInvalid', price_minor: 'priceInvalid' })
    expect(packageProblems({ ...fromPackage(stored), credits: 1.5, currency: 'DOLLARS', price: -1 })).toEqual({
      credits: 'creditsInvalid',
      currency: 'currencyInvalid',
      price_minor: 'priceInvalid',
    })
    expect(packageProblems(fromPackage(stored))).toEqual({})
  })
})
