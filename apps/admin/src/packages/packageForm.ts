/**
 * A credit package as its editor holds it, and the way to and from the API (`Package` ⇄ `PackageRequest`).
 * Prices are stored in the currency's minor unit (cents); the admin types them in the major unit (9.99 €,
 * 1200 ¥), so the form converts with the currency's own number of decimals.
 *
 * Pure functions only (no Vue, no calls): `usePackages` wires them to queries and the page.
 */

import type { components } from '@/api'

export type CreditPackage = components['schemas']['Package']
export type PackageBody = components['schemas']['PackageRequest']

export const CURRENCY = /^[A-Z]{3}$/
export const MAX_CREDITS = 100_000_000
export const MAX_PRICE_MINOR = 100_000_000

export interface PackageForm {
  name: string
  credits: number | null
  /** In the currency's major unit (9.99). */
  price: number | null
  currency: string
  stripePriceId: string
  isActive: boolean
  sortOrder: number
}

/** How many decimals a currency's minor unit has (USD 2, JPY 0, BHD 3); 2 when the browser does not know it. */
export function decimalsOf(currency: string): number {
  if (!CURRENCY.test(currency)) return 2
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2
  } catch {
    return 2
  }
}

export function toMinor(price: number, currency: string): number {
  return Math.round(price * 10 ** decimalsOf(currency))
}

export function fromMinor(minor: number, currency: string): number {
  return minor / 10 ** decimalsOf(currency)
}

/** A price as people read it in `locale` (`$9.99`, `¥1,200`). */
export function formatPrice(minor: number, currency: string, locale: string): string {
  try {
    return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(fromMinor(minor, currency))
  } catch {
    return `${fromMinor(minor, currency)} ${currency}`
  }
}

export function blankPackage(): PackageForm {
  return { name: '', credits: null, price: null, currency: 'USD', stripePriceId: '', isActive: true, sortOrder: 0 }
}

export function fromPackage(pkg: CreditPackage): PackageForm {
  return {
    name: pkg.name,
    credits: pkg.credits,
    price: fromMinor(pkg.price_minor, pkg.currency),
    currency: pkg.currency,
    stripePriceId: pkg.stripe_price_id ?? '',
    isActive: pkg.is_active,
    sortOrder: pkg.sort_order,
  }
}

export type PackageProblem = 'nameRequired' | 'creditsInvalid' | 'priceInvalid' | 'currencyInvalid'

/** What the form can tell before asking the server, by field (the API's names). */
export function packageProblems(form: PackageForm): Partial<Record<'name' | 'credits' | 'price_minor' | 'currency', PackageProblem>> {
  const problems: Partial<Record<'name' | 'credits' | 'price_minor' | 'currency', PackageProblem>> = {}
  if (!form.name.trim()) problems.name = 'nameRequired'
  if (form.credits === null || !Number.isInteger(form.credits) || form.credits < 1 || form.credits > MAX_CREDITS) problems.credits = 'creditsInvalid'
  const currency = form.currency.trim().toUpperCase()
  if (!CURRENCY.test(currency)) problems.currency = 'currencyInvalid'
  if (form.price === null || form.price < 0 || toMinor(form.price, currency) > MAX_PRICE_MINOR) problems.price_minor = 'priceInvalid'
  return problems
}

/** The body of `POST`/`PUT /api/admin/credit-packages` (a PUT replaces the whole package). */
export function packageBody(form: PackageForm): PackageBody {
  const currency = form.currency.trim().toUpperCase()
  return {
    name: form.name.trim(),
    credits: form.credits ?? 0,
    price_minor: toMinor(form.price ?? 0, currency),
    currency,
    stripe_price_id: form.stripePriceId.trim() || null,
    is_active: form.isActive,
    sort_order: form.sortOrder,
  }
}

/** The same package, switched on or off (the PUT body that changes only that). */
export function withActive(pkg: CreditPackage, isActive: boolean): PackageBody {
  return { ...packageBody(fromPackage(pkg)), price_minor: pkg.price_minor, is_active: isActive }
}
