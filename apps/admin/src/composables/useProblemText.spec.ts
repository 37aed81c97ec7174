import { describe, expect, it } from 'vitest'
import { createI18n } from 'vue-i18n'
import { ProblemError, toProblem } from '@/api'
import en from '@/i18n/en'
import zh from '@/i18n/zh'
import { problemText } from './useProblemText'

const i18n = createI18n({ legacy: false, locale: 'en', fallbackLocale: 'en', messages: { en, zh } })
const t = i18n.global.t as (key: string, values?: Record<string, unknown>) => string

describe('a problem as the admin reads it', () => {
  it('says the platform cannot be reached in the admin language, not "Network error"', () => {
    const network = toProblem(null, 0)
    expect(problemText(network, t)).toBe(en.errors.network)
    expect(problemText(new ProblemError(network), t)).toBe(en.errors.network)
    i18n.global.locale.value = 'zh'
    try {
      expect(problemText(network, t)).toBe(zh.errors.network)
    } finally {
      i18n.global.locale.value = 'en'
    }
  })

  it("shows the server's detail as it is", () => {
    const refused = toProblem({ code: 'forbidden', title: 'Forbidden', detail: 'This needs the super admin role.' }, 403)
    expect(problemText(refused, t)).toBe('This needs the super admin role.')
    expect(problemText(new ProblemError(refused), t)).toBe('This needs the super admin role.')
  })

  it('without a detail, says something went wrong with the status, translated, never the English title', () => {
    const bare = toProblem(null, 503)
    expect(bare.title).toBe('Error 503')
    expect(problemText(bare, t)).toBe('Something went wrong (error 503). Please try again.')
    expect(problemText(toProblem({ title: 'Not Found', code: 'not_found' }, 404), t)).toBe('Something went wrong (error 404). Please try again.')
    i18n.global.locale.value = 'zh'
    try {
      expect(problemText(bare, t)).toBe('出错了（错误 503），请重试。')
    } finally {
      i18n.global.locale.value = 'en'
    }
  })

  it('says something went wrong for anything else thrown', () => {
    expect(problemText(new TypeError('x is undefined'), t)).toBe(en.errors.generic)
    expect(problemText(null, t)).toBe(en.errors.generic)
  })
})
