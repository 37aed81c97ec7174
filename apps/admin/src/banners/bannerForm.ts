/**
 * A banner as the admin editor holds it, and the way to and from the API (`AdminBannerView` ⇄
 * `BannerCreate`): flat strings where inputs edit them, the schedule as the date-time pickers' instants
 * (the admin's own time zone) and sent as ISO 8601 with that zone's offset; translations for every locale
 * the web app speaks but English (the banner's own fields are English). Also what a banner's schedule
 * says now, and the checks the form makes before it asks the server.
 *
 * Pure functions only (no Vue, no calls): `useBannerForm` wires them to queries and the page.
 */

import type { components } from '@/api'
import { TRANSLATED_LOCALES } from '@/tools/toolForm'

export type AdminBanner = components['schemas']['AdminBannerView']
export type BannerBody = components['schemas']['BannerCreate']
export type BannerType = 'main' | 'side'
export type LinkTarget = '_self' | '_blank'

export const BANNER_TYPES: readonly BannerType[] = ['main', 'side']
export const LINK_TARGETS: readonly LinkTarget[] = ['_self', '_blank']
/** The translated texts of a banner, with the server's length limits. */
export const BANNER_TEXTS = [
  { key: 'title', maxlength: 200, multiline: false },
  { key: 'description', maxlength: 2000, multiline: true },
  { key: 'link_text', maxlength: 80, multiline: false },
  { key: 'badge', maxlength: 40, multiline: false },
] as const
export type BannerTextKey = (typeof BANNER_TEXTS)[number]['key']
export type BannerTexts = Record<BannerTextKey, string>

// The tasks service's rules (`check_link`, `_COLOR`), so the form says what the server would.
const HTTP_URL = /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][^\s\\]*)?$/
const SITE_PATH = /^\/(?!\/)[^\s\\]*$/
const COLOR = /^(#[0-9a-fA-F]{3,8}|[a-z][a-z0-9-]{0,31})$/

export interface BannerForm {
  title: string
  description: string
  thumbnailAssetId: string | null
  /** The stored image's URL, shown until another is chosen. */
  thumbnailUrl: string | null
  link: string
  linkText: string
  linkTarget: LinkTarget
  type: BannerType
  position: number
  badge: string
  badgeColor: string
  isActive: boolean
  /** Instants (ms since the epoch) as the date-time pickers hold them; null: open. */
  startsAt: number | null
  endsAt: number | null
  translations: Record<string, BannerTexts>
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : ''
}

function blankTexts(): BannerTexts {
  return { title: '', description: '', link_text: '', badge: '' }
}

export function blankBanner(): BannerForm {
  return {
    title: '', description: '', thumbnailAssetId: null, thumbnailUrl: null, link: '', linkText: '', linkTarget: '_self',
    type: 'main', position: 0, badge: '', badgeColor: '', isActive: true, startsAt: null, endsAt: null,
    translations: Object.fromEntries(TRANSLATED_LOCALES.map((locale) => [locale, blankTexts()])),
  }
}

function instant(iso: string | null | undefined): number | null {
  if (!iso) return null
  const ms = Date.parse(iso)
  return Number.isNaN(ms) ? null : ms
}

export function fromBanner(banner: AdminBanner): BannerForm {
  const form = blankBanner()
  for (const locale of TRANSLATED_LOCALES) {
    const stored = banner.translations[locale]
    const record = typeof stored === 'object' && stored !== null ? (stored as Record<string, unknown>) : {}
    form.translations[locale] = { title: text(record.title), description: text(record.description), link_text: text(record.link_text), badge: text(record.badge) }
  }
  return {
    ...form,
    title: banner.title,
    description: banner.description ?? '',
    thumbnailAssetId: banner.thumbnail_asset_id ?? null,
    thumbnailUrl: banner.thumbnail_url ?? null,
    link: banner.link ?? '',
    linkText: banner.link_text ?? '',
    linkTarget: banner.link_target === '_blank' ? '_blank' : '_self',
    type: banner.type === 'side' ? 'side' : 'main',
    position: banner.position,
    badge: banner.badge ?? '',
    badgeColor: banner.badge_color ?? '',
    isActive: banner.is_active,
    startsAt: instant(banner.starts_at),
    endsAt: instant(banner.ends_at),
  }
}

/**
 * An instant as ISO 8601 in the admin's time zone, with its offset (`2026-05-01T10:00:00+02:00`): the
 * moment the admin picked, as they picked it, whatever zone the server is in.
 */
export function isoWithOffset(ms: number): string {
  const at = new Date(ms)
  const pad = (n: number) => String(Math.abs(n)).padStart(2, '0')
  const offset = -at.getTimezoneOffset()
  const sign = offset >= 0 ? '+' : '-'
  return (
    `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}` +
    `${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`
  )
}

/** The body of `POST /api/admin/banners` (and of a PATCH: every field, so the banner becomes the form). */
export function bannerBody(form: BannerForm): BannerBody {
  const translations: NonNullable<BannerBody['translations']> = {}
  for (const [locale, texts] of Object.entries(form.translations)) {
    const entry: NonNullable<BannerBody['translations']>[string] = {}
    for (const { key } of BANNER_TEXTS) if (texts[key].trim()) entry[key] = texts[key].trim()
    if (Object.keys(entry).length) translations[locale] = entry
  }
  return {
    title: form.title.trim(),
    description: form.description.trim() || null,
    thumbnail_asset_id: form.thumbnailAssetId,
    link: form.link.trim() || null,
    link_text: form.linkText.trim() || null,
    link_target: form.linkTarget,
    type: form.type,
    position: form.position,
    badge: form.badge.trim() || null,
    badge_color: form.badgeColor.trim() || null,
    is_active: form.isActive,
    starts_at: form.startsAt === null ? null : isoWithOffset(form.startsAt),
    ends_at: form.endsAt === null ? null : isoWithOffset(form.endsAt),
    translations,
  }
}

export type BannerProblem = 'titleRequired' | 'linkInvalid' | 'colorInvalid' | 'endsBeforeStart'

/** What the form can tell before asking the server, by field (the API's names). */
export function bannerProblems(form: BannerForm): Partial<Record<'title' | 'link' | 'badge_color' | 'ends_at', BannerProblem>> {
  const problems: Partial<Record<'title' | 'link' | 'badge_color' | 'ends_at', BannerProblem>> = {}
  if (!form.title.trim()) problems.title = 'titleRequired'
  const link = form.link.trim()
  if (link && !HTTP_URL.test(link) && !SITE_PATH.test(link)) problems.link = 'linkInvalid'
  const color = form.badgeColor.trim()
  if (color && !COLOR.test(color)) problems.badge_color = 'colorInvalid'
  if (form.startsAt !== null && form.endsAt !== null && form.endsAt <= form.startsAt) problems.ends_at = 'endsBeforeStart'
  return problems
}

/**
 * Where a banner is in its life, by the rule the server shows banners with (`banner_is_live`): `ended`
 * once `ends_at` has passed, `scheduled` before `starts_at`, otherwise `live` when switched on and `off`
 * when not (a missing bound is open).
 */
export type ScheduleState = 'scheduled' | 'live' | 'ended' | 'off'

export function scheduleState(banner: { is_active: boolean; starts_at?: string | null; ends_at?: string | null }, now: number): ScheduleState {
  const starts = instant(banner.starts_at)
  const ends = instant(banner.ends_at)
  if (ends !== null && now >= ends) return 'ended'
  if (starts !== null && now < starts) return 'scheduled'
  return banner.is_active ? 'live' : 'off'
}

export function scheduleTag(state: ScheduleState): 'success' | 'info' | 'default' | 'warning' {
  if (state === 'live') return 'success'
  if (state === 'scheduled') return 'info'
  if (state === 'off') return 'warning'
  return 'default'
}

/**
 * How a badge of background `color` (as an admin typed it: `#rgb` or `#rrggbb`) is drawn: the colour with the
 * black or the white text, whichever contrasts more (white on the red `#ef4444` is 3.8:1, black 5.6:1);
 * undefined for anything else (the tag's own colours).
 */
export function badgeColors(color: string | null | undefined): { color: string; textColor: string } | undefined {
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color?.trim() ?? '')?.[1]
  if (hex === undefined) return undefined
  const full = hex.length === 3 ? [...hex].map((c) => c + c).join('') : hex
  const channels = [0, 2, 4].map((i) => parseInt(full.slice(i, i + 2), 16) / 255)
  const linear = channels.map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
  const luminance = 0.2126 * linear[0]! + 0.7152 * linear[1]! + 0.0722 * linear[2]!
  const onWhite = 1.05 / (luminance + 0.05)
  const onBlack = (luminance + 0.05) / 0.05
  return { color: `#${full}`, textColor: onBlack > onWhite ? '#000000' : '#ffffff' }
}
