import { describe, expect, it } from 'vitest'
import en from './en'
import zh from './zh'

function keys(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null) return [prefix]
  return Object.entries(value).flatMap(([key, inner]) => keys(inner, prefix ? `${prefix}.${key}` : key))
}

describe('the admin catalogs', () => {
  it('say everything in both locales', () => {
    expect(keys(zh).sort()).toEqual(keys(en).sort())
  })

  it('keep the placeholders of each message', () => {
    const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()
    const flat = (catalog: unknown, key: string) => key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], catalog) as string
    for (const key of keys(en)) expect(placeholders(flat(zh, key)), key).toEqual(placeholders(flat(en, key)))
  })
})
