import { describe, expect, it } from 'vitest'
import de from './de'
import en from './en'
import es from './es'
import fr from './fr'
import ja from './ja'
import ko from './ko'
import pt from './pt'
import vi from './vi'
import zh from './zh'

/** Every catalog by locale; English is the reference the others must mirror. */
const catalogs: Record<string, unknown> = { en, zh, ja, fr, es, pt, de, vi, ko }

/** The catalog's leaves by dotted key path (`profile.kind.purchase`); a leaf that is not a string is kept as is. */
function flatten(node: unknown, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  if (node !== null && typeof node === 'object' && !Array.isArray(node)) {
    for (const [key, value] of Object.entries(node)) flatten(value, prefix ? `${prefix}.${key}` : key, out)
  } else {
    out.set(prefix, node)
  }
  return out
}

/** The sorted set of `{name}` placeholders a message uses. */
function placeholders(message: string): string[] {
  return [...new Set([...message.matchAll(/\{\s*([^{}\s]+)\s*\}/g)].map((match) => match[1] ?? ''))].sort()
}

const reference = flatten(en)

describe.each(Object.keys(catalogs))('the %s catalog', (locale) => {
  const messages = flatten(catalogs[locale])

  it('has exactly the key paths of the English catalog', () => {
    expect([...messages.keys()].sort()).toEqual([...reference.keys()].sort())
  })

  it('has a non-empty string for every key', () => {
    for (const [path, value] of messages) {
      expect(typeof value, path).toBe('string')
      expect(String(value).trim(), path).not.toBe('')
    }
  })

  it('uses the same placeholders as the English message for every key', () => {
    for (const [path, english] of reference) {
      const value = messages.get(path)
      if (typeof english !== 'string' || typeof value !== 'string') continue
      expect(placeholders(value), path).toEqual(placeholders(english))
    }
  })

  it('keeps the brand name FunMagic wherever the English message has it', () => {
    for (const [path, english] of reference) {
      const value = messages.get(path)
      if (typeof english === 'string' && english.includes('FunMagic')) expect(value, path).toContain('FunMagic')
    }
  })
})
