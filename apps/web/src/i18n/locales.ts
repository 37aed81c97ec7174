/** The nine locales of the original app; the URL's first segment picks one, English is the fallback. */
export const LOCALES = ['en', 'zh', 'ja', 'fr', 'es', 'pt', 'de', 'vi', 'ko'] as const
export type Locale = (typeof LOCALES)[number]
export const DEFAULT_LOCALE: Locale = 'en'

export const LOCALE_NAMES: Record<Locale, string> = {
  en: 'English',
  zh: '中文',
  ja: '日本語',
  fr: 'Français',
  es: 'Español',
  pt: 'Português',
  de: 'Deutsch',
  vi: 'Tiếng Việt',
  ko: '한국어',
}

export function isLocale(value: unknown): value is Locale {
  return typeof value === 'string' && (LOCALES as readonly string[]).includes(value)
}

/** The locale a visitor most likely reads, from the browser's preferences. */
export function preferredLocale(languages: readonly string[] = navigator.languages): Locale {
  return firstSpoken(languages, LOCALES) ?? DEFAULT_LOCALE
}

/**
 * The first of the browser's `languages` (`zh-CN`, `de`) whose base language is one of `locales`, undefined
 * when none is (the admin app, with fewer locales, asks the same question).
 */
export function firstSpoken<L extends string>(languages: readonly string[], locales: readonly L[]): L | undefined {
  for (const language of languages) {
    const base = language.toLowerCase().split('-')[0]
    const spoken = locales.find((locale) => locale === base)
    if (spoken !== undefined) return spoken
  }
  return undefined
}
