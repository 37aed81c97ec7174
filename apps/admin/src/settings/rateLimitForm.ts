/**
 * The gateway's API rate limits as their settings form holds them, and the way to and from
 * `GET`/`PUT /api/admin/settings/rate-limit` (`RateLimitSettings`): one limit per category (requests per
 * window) and the tiers that multiply the per-user limits by what a user bought. A PUT replaces the whole
 * set, so the form always sends every category and every tier.
 *
 * The checks are the gateway's (`domain/rate_limits.py`): whole numbers in range, tier names and
 * thresholds unique.
 *
 * Pure functions only (no Vue, no calls): `useRateLimits` wires them to the query and the page.
 */

import type { components } from '@/api'

export type RateLimitSettings = components['schemas']['RateLimitSettings']
export type Category = 'global_api' | 'user_api' | 'task_creation' | 'upload' | 'auth_session' | 'auth_action'

export const CATEGORIES: readonly Category[] = ['global_api', 'user_api', 'task_creation', 'upload', 'auth_session', 'auth_action']
/** The categories a tier multiplies (the per-user API limit and task creation). */
export const TIERED: readonly Category[] = ['user_api', 'task_creation']
/** What each category counts per: the client's address or the signed-in user. */
export const COUNTED_PER: Record<Category, 'ip' | 'user'> = {
  global_api: 'ip', user_api: 'user', task_creation: 'user', upload: 'user', auth_session: 'ip', auth_action: 'ip',
}
export const LIMIT_RANGE = { min: 1, max: 1_000_000 } as const
export const WINDOW_RANGE = { min: 1, max: 86_400 } as const
export const MIN_PURCHASED_RANGE = { min: 0, max: 1_000_000_000 } as const
export const MULTIPLIER_RANGE = { min: 1, max: 100 } as const
export const MAX_TIERS = 20
export const MAX_TIER_NAME = 40

export interface LimitForm {
  limit: number | null
  windowSeconds: number | null
}

export interface TierForm {
  /** Stable while the tier is edited (its name may change): the list's key. */
  key: string
  name: string
  minPurchased: number | null
  multiplier: number | null
}

export interface RateLimitForm {
  limits: Record<Category, LimitForm>
  tiers: TierForm[]
}

let keys = 0
export function tierKey(): string {
  keys += 1
  return `t${keys}`
}

export function fromSettings(settings: RateLimitSettings): RateLimitForm {
  const limits = {} as Record<Category, LimitForm>
  for (const category of CATEGORIES) {
    const limit = settings[category]
    limits[category] = { limit: limit?.limit ?? null, windowSeconds: limit?.window_seconds ?? null }
  }
  const tiers = (settings.tiers ?? []).map((tier) => ({ key: tierKey(), name: tier.name, minPurchased: tier.min_purchased, multiplier: tier.multiplier }))
  return { limits, tiers }
}

export function newTier(tiers: readonly TierForm[]): TierForm {
  const highest = tiers.reduce((top, tier) => Math.max(top, tier.minPurchased ?? 0), 0)
  return { key: tierKey(), name: '', minPurchased: tiers.length === 0 ? 0 : highest + 1, multiplier: 1 }
}

/** The PUT body: every category and every tier (names trimmed). Call only when `settingsProblems` is empty. */
export function settingsBody(form: RateLimitForm): RateLimitSettings {
  const body: RateLimitSettings = {
    tiers: form.tiers.map((tier) => ({ name: tier.name.trim(), min_purchased: tier.minPurchased ?? 0, multiplier: tier.multiplier ?? 1 })),
  }
  for (const category of CATEGORIES) {
    const { limit, windowSeconds } = form.limits[category]
    body[category] = { limit: limit ?? LIMIT_RANGE.min, window_seconds: windowSeconds ?? WINDOW_RANGE.min }
  }
  return body
}

export type SettingsProblem = 'required' | 'wholeNumber' | 'outOfRange' | 'nameRequired' | 'nameTooLong' | 'nameRepeated' | 'thresholdRepeated' | 'tooManyTiers'

/** One problem of the form, by the path the API's refusals use (`user_api.limit`, `tiers[1].name`, `tiers`). */
export type SettingsProblems = Record<string, SettingsProblem>

function checkNumber(value: number | null, range: { min: number; max: number }): SettingsProblem | null {
  if (value === null) return 'required'
  if (!Number.isInteger(value)) return 'wholeNumber'
  if (value < range.min || value > range.max) return 'outOfRange'
  return null
}

export function settingsProblems(form: RateLimitForm): SettingsProblems {
  const problems: SettingsProblems = {}
  const note = (path: string, problem: SettingsProblem | null) => {
    if (problem) problems[path] = problem
  }
  for (const category of CATEGORIES) {
    note(`${category}.limit`, checkNumber(form.limits[category].limit, LIMIT_RANGE))
    note(`${category}.window_seconds`, checkNumber(form.limits[category].windowSeconds, WINDOW_RANGE))
  }
  if (form.tiers.length > MAX_TIERS) problems.tiers = 'tooManyTiers'
  const names = form.tiers.map((tier) => tier.name.trim())
  const thresholds = form.tiers.map((tier) => tier.minPurchased)
  form.tiers.forEach((tier, index) => {
    const name = names[index] ?? ''
    if (!name) note(`tiers[${index}].name`, 'nameRequired')
    else if (name.length > MAX_TIER_NAME) note(`tiers[${index}].name`, 'nameTooLong')
    else if (names.indexOf(name) !== index) note(`tiers[${index}].name`, 'nameRepeated')
    const threshold = checkNumber(tier.minPurchased, MIN_PURCHASED_RANGE)
    if (threshold) note(`tiers[${index}].min_purchased`, threshold)
    else if (thresholds.indexOf(tier.minPurchased) !== index) note(`tiers[${index}].min_purchased`, 'thresholdRepeated')
    note(`tiers[${index}].multiplier`, checkNumber(tier.multiplier, MULTIPLIER_RANGE))
  })
  return problems
}

/** The tiers as users meet them: by the credits they must have bought, lowest first. */
export function tiersInOrder(tiers: readonly TierForm[]): TierForm[] {
  return [...tiers].sort((a, b) => (a.minPurchased ?? 0) - (b.minPurchased ?? 0))
}
