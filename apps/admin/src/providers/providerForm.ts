/**
 * A provider as its editor holds it, and the way to and from the API (`Provider` ⇄ `ProviderCreate` /
 * `ProviderUpdate`), for both registries (web scope: user tools; admin scope: the studio).
 *
 * The API key is write-only: answers carry `api_key_hint` (`••••1234`) and nothing else of it. The form
 * never holds the stored key; a new one is typed into `newKey`, and an edit sends `api_key` only when the
 * admin chose to replace the key and typed one — an edit of anything else leaves the key alone.
 *
 * Tencent Hunyuan signs with a pair: its SecretId is the API key and its SecretKey the API secret, write-only
 * like the key (`api_secret_hint`, `newSecret`, `replacingSecret`); only the types in `NEEDS_SECRET` have one.
 *
 * Rate limits are the `config.rateLimit` fields the providers service's limiter reads
 * (`domain/rate_limit.py`): maxConcurrency, maxPerMinute, maxPerDay (≥ 1, none = unlimited), retryOn429
 * (default true), maxRetries (≥ 0, default 3), baseBackoffMs (≥ 1, default 1000). Other config keys
 * (`models`, `options`…) are kept as they are.
 *
 * Pure functions only (no Vue, no calls): `useProviderForm` wires them to queries and the page.
 */

import type { components } from '@/api'

type Schemas = components['schemas']
export type Provider = Schemas['Provider']
export type ProviderCreateBody = Schemas['ProviderCreate']
export type ProviderUpdateBody = Schemas['ProviderUpdate']
export type HealthCheck = Schemas['ProviderHealthCheck']
export type ProviderType = ProviderCreateBody['type']
/** `web`: the providers of user tools (admins); `admin`: the studio's (super admins only). */
export type Scope = 'web' | 'admin'

export const PROVIDER_TYPES: readonly ProviderType[] = ['openai', 'fal', 'tripo', 'replicate', 'hunyuan', 'gemini', 'local']
/** Types whose credential has a second, secret part (the providers service refuses them without it). */
export const NEEDS_SECRET: readonly ProviderType[] = ['hunyuan']

export function needsSecret(type: ProviderType): boolean {
  return NEEDS_SECRET.includes(type)
}
/** What each remote API's base URL usually is (shown as the field's example, never filled in). */
export const BASE_URL_EXAMPLES: Record<ProviderType, string> = {
  openai: 'https://api.openai.com/v1',
  fal: 'https://queue.fal.run',
  tripo: 'https://api.tripo3d.ai/v2/openapi',
  replicate: 'https://api.replicate.com/v1',
  hunyuan: 'https://ai3d.tencentcloudapi.com',
  gemini: 'https://generativelanguage.googleapis.com',
  local: '',
}
// The providers service's rules (`check_name`, `check_base_url`).
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/
const BASE_URL = /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/

export const LIMIT_FIELDS = ['maxConcurrency', 'maxPerMinute', 'maxPerDay'] as const
export type LimitField = (typeof LIMIT_FIELDS)[number]
/** What the limiter uses when a retry field is not set. */
export const RETRY_DEFAULTS = { retryOn429: true, maxRetries: 3, baseBackoffMs: 1000 } as const

export interface RateLimitForm {
  maxConcurrency: number | null
  maxPerMinute: number | null
  maxPerDay: number | null
  retryOn429: boolean
  maxRetries: number | null
  baseBackoffMs: number | null
}

export interface ProviderForm {
  name: string
  type: ProviderType
  displayName: string
  baseUrl: string
  isActive: boolean
  rateLimit: RateLimitForm
  /** The config's other keys, untouched. */
  otherConfig: Record<string, unknown>
  /** Whether the admin chose to replace the stored key (always true for a new provider). */
  replacingKey: boolean
  /** The key being typed; never the stored one, which the app never sees. */
  newKey: string
  /** The same for the secret of a two-part credential (NEEDS_SECRET). */
  replacingSecret: boolean
  newSecret: string
}

export function blankRateLimit(): RateLimitForm {
  return { maxConcurrency: null, maxPerMinute: null, maxPerDay: null, retryOn429: true, maxRetries: null, baseBackoffMs: null }
}

export function blankProvider(): ProviderForm {
  return { name: '', type: 'openai', displayName: '', baseUrl: '', isActive: true, rateLimit: blankRateLimit(), otherConfig: {}, replacingKey: true, newKey: '', replacingSecret: true, newSecret: '' }
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
}

function count(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) ? value : null
}

export function rateLimitFrom(config: Record<string, unknown>): RateLimitForm {
  const limits = record(config.rateLimit)
  return {
    maxConcurrency: count(limits.maxConcurrency),
    maxPerMinute: count(limits.maxPerMinute),
    maxPerDay: count(limits.maxPerDay),
    retryOn429: limits.retryOn429 !== false,
    maxRetries: count(limits.maxRetries),
    baseBackoffMs: count(limits.baseBackoffMs),
  }
}

export function fromProvider(provider: Provider): ProviderForm {
  const { rateLimit: _limits, ...otherConfig } = provider.config
  return {
    name: provider.name,
    type: PROVIDER_TYPES.find((type) => type === provider.type) ?? 'openai',
    displayName: provider.display_name ?? '',
    baseUrl: provider.base_url ?? '',
    isActive: provider.is_active,
    rateLimit: rateLimitFrom(provider.config),
    otherConfig,
    replacingKey: false,
    newKey: '',
    replacingSecret: false,
    newSecret: '',
  }
}

/**
 * `config.rateLimit` as the limiter reads it: only the fields set (a default is left out, so an untouched
 * provider keeps its config as it was); no fields, no `rateLimit` (no limits).
 */
export function rateLimitConfig(form: RateLimitForm): Record<string, number | boolean> | null {
  const limits: Record<string, number | boolean> = {}
  for (const field of LIMIT_FIELDS) if (form[field] !== null) limits[field] = form[field] as number
  if (!form.retryOn429) limits.retryOn429 = false
  if (form.maxRetries !== null) limits.maxRetries = form.maxRetries
  if (form.baseBackoffMs !== null) limits.baseBackoffMs = form.baseBackoffMs
  return Object.keys(limits).length ? limits : null
}

export function providerConfig(form: ProviderForm): Record<string, unknown> {
  const limits = rateLimitConfig(form.rateLimit)
  return limits ? { ...form.otherConfig, rateLimit: limits } : { ...form.otherConfig }
}

export function createBody(form: ProviderForm): ProviderCreateBody {
  const key = form.newKey.trim()
  return {
    name: form.name.trim(),
    type: form.type,
    display_name: form.displayName.trim() || null,
    base_url: form.type === 'local' ? null : form.baseUrl.trim() || null,
    config: providerConfig(form),
    is_active: form.isActive,
    ...(key ? { api_key: key } : {}),
    ...(needsSecret(form.type) && form.newSecret.trim() ? { api_secret: form.newSecret.trim() } : {}),
  }
}

/** The PATCH of an existing provider: its editable fields, and `api_key` only when a new key replaces it. */
export function updateBody(form: ProviderForm): ProviderUpdateBody {
  const key = form.newKey.trim()
  return {
    display_name: form.displayName.trim() || null,
    base_url: form.type === 'local' ? null : form.baseUrl.trim() || null,
    config: providerConfig(form),
    is_active: form.isActive,
    ...(form.replacingKey && key ? { api_key: key } : {}),
    ...(needsSecret(form.type) && form.replacingSecret && form.newSecret.trim() ? { api_secret: form.newSecret.trim() } : {}),
  }
}

export type ProviderProblem =
  | 'nameInvalid'
  | 'baseUrlRequired'
  | 'baseUrlInvalid'
  | 'keyRequired'
  | 'keyAgainForNewUrl'
  | 'secretRequired'
  | 'secretAgainForNewUrl'
  | 'limitInvalid'
  | 'retriesInvalid'
  | 'backoffInvalid'

export type ProviderField = 'name' | 'base_url' | 'api_key' | 'api_secret' | `rateLimit.${keyof RateLimitForm}`

/**
 * Whether the form moves a stored provider to another address than `storedBaseUrl` (trailing slashes aside,
 * as the server compares them): its stored key and secret are then needed again — a key only ever goes to
 * the address it was entered for.
 */
export function movesBaseUrl(form: ProviderForm, storedBaseUrl: string | null | undefined): boolean {
  if (storedBaseUrl === undefined || form.type === 'local') return false
  const bare = (url: string | null): string => (url ?? '').trim().replace(/\/+$/, '')
  return bare(form.baseUrl) !== bare(storedBaseUrl)
}

/**
 * What the form can tell before asking the server, by field. `creating`: a new provider (its key is needed).
 * `storedBaseUrl`: a stored provider's address (undefined while creating, or before it loaded).
 */
export function providerProblems(
  form: ProviderForm,
  creating: boolean,
  storedBaseUrl?: string | null,
): Partial<Record<ProviderField, ProviderProblem>> {
  const problems: Partial<Record<ProviderField, ProviderProblem>> = {}
  if (creating && !NAME.test(form.name.trim())) problems.name = 'nameInvalid'
  if (form.type !== 'local') {
    const url = form.baseUrl.trim()
    if (!url) problems.base_url = 'baseUrlRequired'
    else if (!BASE_URL.test(url)) problems.base_url = 'baseUrlInvalid'
    const moved = !creating && movesBaseUrl(form, storedBaseUrl)
    if ((creating || form.replacingKey) && !form.newKey.trim()) problems.api_key = 'keyRequired'
    if (moved && !(form.replacingKey && form.newKey.trim())) problems.api_key = 'keyAgainForNewUrl'
    if (needsSecret(form.type) && (creating || form.replacingSecret) && !form.newSecret.trim()) problems.api_secret = 'secretRequired'
    if (needsSecret(form.type) && moved && !(form.replacingSecret && form.newSecret.trim())) problems.api_secret = 'secretAgainForNewUrl'
  }
  const limits = form.rateLimit
  for (const field of LIMIT_FIELDS) {
    const value = limits[field]
    if (value !== null && (!Number.isInteger(value) || value < 1)) problems[`rateLimit.${field}`] = 'limitInvalid'
  }
  if (limits.maxRetries !== null && (!Number.isInteger(limits.maxRetries) || limits.maxRetries < 0)) problems['rateLimit.maxRetries'] = 'retriesInvalid'
  if (limits.baseBackoffMs !== null && (!Number.isInteger(limits.baseBackoffMs) || limits.baseBackoffMs < 1)) problems['rateLimit.baseBackoffMs'] = 'backoffInvalid'
  return problems
}

/** A provider's health as a word: never checked, healthy or not. */
export type Health = 'healthy' | 'unhealthy' | 'unknown'

export function healthOf(provider: { is_healthy?: boolean | null }): Health {
  if (provider.is_healthy === true) return 'healthy'
  if (provider.is_healthy === false) return 'unhealthy'
  return 'unknown'
}

export function healthTag(health: Health): 'success' | 'error' | 'default' {
  return health === 'healthy' ? 'success' : health === 'unhealthy' ? 'error' : 'default'
}

/** The limits of a provider in a few words for a list (`2 at once · 60/min`), or null when unlimited. */
export function limitsSummary(config: Record<string, unknown>): { concurrency: number | null; perMinute: number | null; perDay: number | null } | null {
  const limits = rateLimitFrom(config)
  if (limits.maxConcurrency === null && limits.maxPerMinute === null && limits.maxPerDay === null) return null
  return { concurrency: limits.maxConcurrency, perMinute: limits.maxPerMinute, perDay: limits.maxPerDay }
}
