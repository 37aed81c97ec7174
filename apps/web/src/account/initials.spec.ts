import { describe, expect, it } from 'vitest'
import { initials } from './initials'

describe('initials', () => {
  it('takes the first letters of the first and last word of the name', () => {
    expect(initials('Ada Lovelace', 'ada@example.com')).toBe('AL')
    expect(initials('  jean-luc  picard ', null)).toBe('JP')
  })

  it('takes one letter of a one-word name', () => {
    expect(initials('ada', 'x@example.com')).toBe('A')
  })

  it('falls back to the email local part, then to a question mark', () => {
    expect(initials('  ', 'grace.hopper@example.com')).toBe('GH')
    expect(initials(null, null)).toBe('?')
  })

  it('keeps whole characters of scripts without case and of emoji', () => {
    expect(initials('山田 太郎', null)).toBe('山太')
    expect(initials('😀 Smile', null)).toBe('😀S')
  })
})
