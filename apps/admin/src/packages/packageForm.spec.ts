import { describe, expect, it } from 'vitest'
import { blankPackage, type CreditPackage, decimalsOf, formatPrice, fromPackage, maxBonus, packageBody, packageProblems, toMinor, withActive } from './packageForm'

const stored: CreditPackage = {
  id: 'p-1',
  name: 'Starter',
  credits: 500,
  price_minor: 999,
  currency: 'USD',
  stripe_price_id: 'price_123',
  is_active: true,
  sort_order: 2,
  description: 'A good start',
  bonus_credits: 50,
  is_popular: true,
  translations: { ja: { name: 'スターター' }, xx: 'ignored' },
}

describe('a credit package form', () => {
  it('shows the price in the major unit and sends it back in cents', () => {
    const form = fromPackage(stored)
    expect(form.price).toBe(9.99)
    expect(packageBody(form)).toEqual({
      name: 'Starter', description: 'A good start', credits: 500, bonus_credits: 50, is_popular: true, price_minor: 999, currency: 'USD',
      stripe_price_id: 'price_123', is_active: true, sort_order: 2, translations: { ja: { name: 'スターター' } },
    })
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

  it('keeps a translation per locale, sending only the texts that are filled in', () => {
    const form = fromPackage(stored)
    expect(form.translations.ja).toEqual({ name: 'スターター', description: '' })
    expect(form.translations.de).toEqual({ name: '', description: '' })
    form.translations.de = { name: ' ', description: ' Ein guter Anfang ' }
    expect(packageBody(form).translations).toEqual({ ja: { name: 'スターター' }, de: { description: 'Ein guter Anfang' } })
    expect(packageBody(blankPackage()).description).toBeNull()
  })

  it('bounds the bonus to ten times the credits and the description to 500 characters', () => {
    expect(maxBonus(500)).toBe(5000)
    expect(maxBonus(null)).toBe(0)
    expect(packageProblems({ ...fromPackage(stored), bonusCredits: 5000 })).toEqual({})
    expect(packageProblems({ ...fromPackage(stored), bonusCredits: 5001 })).toEqual({ bonus_credits: 'bonusInvalid' })
    expect(packageProblems({ ...fromPackage(stored), bonusCredits: -1 })).toEqual({ bonus_credits: 'bonusInvalid' })
    expect(packageProblems({ ...fromPackage(stored), description: 'x'.repeat(501) })).toEqual({ description: 'descriptionTooLong' })
  })
})
