/** Which of the admin app's locales to start in: the one chosen here before, else the browser's. */

import { firstSpoken } from '@shared/i18n/locales'

export const LOCALES = ['en', 'zh'] as const
export type Locale = (typeof LOCALES)[number]

function isLocale(value: unknown): value is Locale {
  return typeof value === 'string' && (LOCALES as readonly string[]).includes(value)
}

/**
 * The locale chosen in this browser before (`stored`) wins; on a first visit, the first of the browser's
 * languages the app speaks (`zh-CN`, `zh-TW` → zh); English when it speaks none of them.
 */
export function startingLocale(stored: string | null, languages: readonly string[]): Locale {
  if (isLocale(stored)) return stored
  return firstSpoken(languages, LOCALES) ?? 'en'
}
