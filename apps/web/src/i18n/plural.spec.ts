import { describe, expect, it } from 'vitest'
import { createI18n } from 'vue-i18n'
import de from './de'
import en from './en'
import es from './es'
import fr from './fr'
import ja from './ja'
import ko from './ko'
import { PLURAL_RULES } from './plural'
import pt from './pt'
import vi from './vi'
import zh from './zh'

const catalogs = { en, zh, ja, fr, es, pt, de, vi, ko }

function translator(locale: keyof typeof catalogs) {
  const i18n = createI18n({ legacy: false, locale, fallbackLocale: 'en', messages: catalogs, pluralRules: PLURAL_RULES })
  return i18n.global.t
}

describe('counted messages', () => {
  it('say "1 credit" and "2 credits" in English', () => {
    const t = translator('en')
    expect(t('nav.credits', { n: 1 }, 1)).toBe('1 credit')
    expect(t('nav.credits', { n: 2 }, 2)).toBe('2 credits')
    expect(t('nav.credits', { n: 0 }, 0)).toBe('0 credits')
    expect(t('tools.from', { n: 1 }, 1)).toBe('from 1 credit')
    expect(t('tool.run', { cost: 1 }, 1)).toBe('Run for 1 credit')
    expect(t('tool.run', { cost: 3 }, 3)).toBe('Run for 3 credits')
    expect(t('tool.continueWith', { step: '3D model', cost: 1 }, 1)).toBe('Continue: 3D model (1 credit)')
    expect(t('tool.charged', { n: 1 }, 1)).toBe('1 credit used')
    expect(t('pricing.successDone', { n: 1 }, 1)).toBe('Your credits are ready. Balance: 1 credit.')
    expect(t('errors.rateLimited', { n: 1 }, 1)).toBe('Too many requests. Try again in 1 second.')
    expect(t('errors.rateLimited', { n: 30 }, 30)).toBe('Too many requests. Try again in 30 seconds.')
    expect(t('common.credits', 1)).toBe('credit')
    expect(t('common.credits', 5)).toBe('credits')
  })

  it('use German and Spanish singulars for one only', () => {
    expect(translator('de')('nav.credits', { n: 1 }, 1)).toBe('1 Credit')
    expect(translator('de')('errors.rateLimited', { n: 2 }, 2)).toBe('Zu viele Anfragen. Versuche es in 2 Sekunden erneut.')
    expect(translator('es')('tool.charged', { n: 0 }, 0)).toBe('0 créditos usados')
  })

  it('treat 0 as singular in French and Portuguese', () => {
    const fr = translator('fr')
    expect(fr('nav.credits', { n: 0 }, 0)).toBe('0 crédit')
    expect(fr('nav.credits', { n: 1 }, 1)).toBe('1 crédit')
    expect(fr('nav.credits', { n: 2 }, 2)).toBe('2 crédits')
    expect(translator('pt')('tool.charged', { n: 0 }, 0)).toBe('0 crédito usado')
  })

  it('keep their one form where the language has no plural', () => {
    expect(translator('zh')('nav.credits', { n: 1 }, 1)).toBe('1 积分')
    expect(translator('ja')('tool.run', { cost: 2 }, 2)).toBe('実行する（2 クレジット）')
  })
})

describe.each(Object.keys(catalogs) as (keyof typeof catalogs)[])('the %s catalog', (locale) => {
  it('shows the e-mail placeholder with its @ (a special character to vue-i18n)', () => {
    expect(translator(locale)('auth.emailPlaceholder')).toMatch(/^[a-z]+@[a-z]+\.[a-z]+$/)
  })
})
