/** vue-i18n for the admin app's two locales (en, zh); English is bundled, Chinese loads on demand. */

import { createI18n } from 'vue-i18n'
import en from './en'
import { startingLocale, type Locale } from './locales'

export { LOCALES, type Locale } from './locales'
export type Messages = typeof en
const STORED = 'funmagic.admin.locale'

export const i18n = createI18n({
  legacy: false,
  locale: 'en' as Locale,
  fallbackLocale: 'en',
  messages: { en } as Record<string, Messages>,
  missingWarn: false,
  fallbackWarn: false,
})

export async function setLocale(locale: Locale): Promise<void> {
  if (locale === 'zh' && !i18n.global.availableLocales.includes('zh')) {
    i18n.global.setLocaleMessage('zh', (await import('./zh')).default)
  }
  i18n.global.locale.value = locale
  document.documentElement.lang = locale
  localStorage.setItem(STORED, locale)
}

/** The locale chosen in this browser before, else the browser's own language when the app speaks it. */
export function storedLocale(): Locale {
  return startingLocale(localStorage.getItem(STORED), navigator.languages ?? [])
}
