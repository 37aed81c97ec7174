/**
 * A credit package as its editor holds it, and the way to and from the API (`Package` ⇄ `PackageRequest`).
 * Prices are stored in the currency's minor unit (cents); the admin types them in the major unit (9.99 €,
 * 1200 ¥), so the form converts with the currency's own number of decimals.
 *
 * Pure functions only (no Vue, no calls): `usePackages` wires them to queries and the page.
 */

import type { components } from '@/api'
import { TRANSLATED_LOCALES } from '@/tools/toolForm'

export type CreditPackage = components['schemas']['AdminPackage']
export type PackageBody = components['schemas']['PackageRequest']
export type PackageTexts = { name: string; description: string }

export const CURRENCY = /^[A-Z]{3}$/
export const MAX_CREDITS = 100_000_000
export const MAX_PRICE_MINOR = 100_000_000
export const MAX_NAME_LENGTH = 100
export const MAX_DESCRIPTION_LENGTH = 500
/** The server's bound: a bonus of at most ten times the package's credits. */
export const MAX_BONUS_FACTOR = 10

export interface PackageForm {
  name: string
  /** English, like `name`; the translations' fallback. */
  description: string
  credits: number | null
  bonusCredits: number
  isPopular: boolean
  /** Name and description per locale the web app speaks besides English; empty texts fall back to English. */
  translations: Record<string, PackageTexts>
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

function text(value: unknown): string {
  return typeof value === 'string' ? value : ''
}

function blankTranslations(): Record<string, PackageTexts> {
  return Object.fromEntries(TRANSLATED_LOCALES.map((locale) => [locale, { name: '', description: '' }]))
}

export function blankPackage(): PackageForm {
  return {
    name: '', description: '', credits: null, bonusCredits: 0, isPopular: false, translations: blankTranslations(),
    price: null, currency: 'USD', stripePriceId: '', isActive: true, sortOrder: 0,
  }
}

export function fromPackage(pkg: CreditPackage): PackageForm {
  const translations = blankTranslations()
  for (const locale of TRANSLATED_LOCALES) {
    const stored = pkg.translations?.[locale]
    const record = typeof stored === 'object' && stored !== null ? (stored as Record<string, unknown>) : {}
    translations[locale] = { name: text(record.name), description: text(record.description) }
  }
  return {
    name: pkg.name,
    description: pkg.description ?? '',
    credits: pkg.credits,
    bonusCredits: pkg.bonus_credits ?? 0,
    isPopular: pkg.is_popular ?? false,
    translations,
    price: fromMinor(pkg.price_minor, pkg.currency),
    currency: pkg.currency,
    stripePriceId: pkg.stripe_price_id ?? '',
    isActive: pkg.is_active,
    sortOrder: pkg.sort_order,
  }
}

export type PackageProblem = 'nameRequired' | 'creditsInvalid' | 'priceInvalid' | 'currencyInvalid' | 'bonusInvalid' | 'descriptionTooLong'
type ProblemField = 'name' | 'credits' | 'price_minor' | 'currency' | 'bonus_credits' | 'description'

/** The largest bonus the server takes for a package of `credits` (0 while the credits are not valid). */
export function maxBonus(credits: number | null): number {
  return credits !== null && Number.isInteger(credits) && credits > 0 ? credits * MAX_BONUS_FACTOR : 0
}

/** What the form can tell before asking the server, by field (the API's names). */
export function packageProblems(form: PackageForm): Partial<Record<ProblemField, PackageProblem>> {
  const problems: Partial<Record<ProblemField, PackageProblem>> = {}
  if (!form.name.trim()) problems.name = 'nameRequired'
  if (form.description.trim().length > MAX_DESCRIPTION_LENGTH) problems.description = 'descriptionTooLong'
  if (form.credits === null || !Number.isInteger(form.credits) || form.credits < 1 || form.credits > MAX_CREDITS) problems.credits = 'creditsInvalid'
  else if (!Number.isInteger(form.bonusCredits) || form.bonusCredits < 0 || form.bonusCredits > maxBonus(form.credits)) problems.bonus_credits = 'bonusInvalid'
  const currency = form.currency.trim().toUpperCase()
  if (!CURRENCY.test(currency)) problems.currency = 'currencyInvalid'
  if (form.price === null || form.price < 0 || toMinor(form.price, currency) > MAX_PRICE_MINOR) problems.price_minor = 'priceInvalid'
  return problems
}

/** The body of `POST`/`PUT /api/admin/credit-packages` (a PUT replaces the whole package). */
export function packageBody(form: PackageForm): PackageBody {
  const currency = form.currency.trim().toUpperCase()
  const translations: NonNullable<PackageBody['translations']> = {}
  for (const [locale, texts] of Object.entries(form.translations)) {
    const entry: { name?: string; description?: string } = {}
    if (texts.name.trim()) entry.name = texts.name.trim()
    if (texts.description.trim()) entry.description = texts.description.trim()
    if (Object.keys(entry).length) (translations as Record<string, typeof entry>)[locale] = entry
  }
  return {
    name: form.name.trim(),
    description: form.description.trim() || null,
    credits: form.credits ?? 0,
    bonus_credits: form.bonusCredits,
    is_popular: form.isPopular,
    price_minor: toMinor(form.price ?? 0, currency),
    currency,
    stripe_price_id: form.stripePriceId.trim() || null,
    is_active: form.isActive,
    sort_order: form.sortOrder,
    translations,
  }
}

/** The same package, switched on or off (the PUT body that changes only that). */
export function withActive(pkg: CreditPackage, isActive: boolean): PackageBody {
  return { ...packageBody(fromPackage(pkg)), price_minor: pkg.price_minor, is_active: isActive }
}
