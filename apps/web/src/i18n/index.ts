/**
 * vue-i18n with English bundled and the other eight locales loaded on demand (each its own small chunk), so
 * a first visit downloads one language. `setLocale` loads, switches and sets `<html lang>`.
 */

import { createI18n } from 'vue-i18n'
import en from './en'
import { DEFAULT_LOCALE, type Locale } from './locales'
import { PLURAL_RULES } from './plural'

export type Messages = typeof en

export const i18n = createI18n({
  legacy: false,
  locale: DEFAULT_LOCALE as Locale,
  fallbackLocale: DEFAULT_LOCALE,
  messages: { en } as Record<string, Messages>,
  missingWarn: false,
  fallbackWarn: false,
  pluralRules: PLURAL_RULES,
})

const loaders: Record<Exclude<Locale, 'en'>, () => Promise<{ default: Messages }>> = {
  zh: () => import('./zh'),
  ja: () => import('./ja'),
  fr: () => import('./fr'),
  es: () => import('./es'),
  pt: () => import('./pt'),
  de: () => import('./de'),
  vi: () => import('./vi'),
  ko: () => import('./ko'),
}

export async function setLocale(locale: Locale): Promise<void> {
  if (locale !== 'en' && !i18n.global.availableLocales.includes(locale)) {
    const messages = await loaders[locale]()
    i18n.global.setLocaleMessage(locale, messages.default)
  }
  i18n.global.locale.value = locale
  document.documentElement.lang = locale
}
