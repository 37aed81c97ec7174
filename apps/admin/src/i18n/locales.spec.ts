import { describe, expect, it } from 'vitest'
import { startingLocale } from './locales'

describe('the locale the admin app starts in', () => {
  it('is the one chosen in this browser before', () => {
    expect(startingLocale('zh', ['en-US'])).toBe('zh')
    expect(startingLocale('en', ['zh-CN'])).toBe('en')
  })

  it('follows the browser on a first visit, by its first language the app speaks', () => {
    expect(startingLocale(null, ['zh-CN', 'en'])).toBe('zh')
    expect(startingLocale(null, ['ja-JP', 'zh-TW', 'en'])).toBe('zh')
    expect(startingLocale(null, ['de-DE', 'en-GB'])).toBe('en')
  })

  it('is English when nothing stored is a locale and the browser speaks none of them', () => {
    expect(startingLocale('klingon', ['ja-JP'])).toBe('en')
    expect(startingLocale(null, [])).toBe('en')
  })
})
