import { describe, expect, it } from 'vitest'
import { createI18n } from 'vue-i18n'
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
    // Plural forms (`one | {n} many`) may name a placeholder in some forms only, or in each: compare the set.
    const placeholders = (text: string) => [...new Set([...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]))].sort()
    const flat = (catalog: unknown, key: string) => key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], catalog) as string
    for (const key of keys(en)) expect(placeholders(flat(zh, key)), key).toEqual(placeholders(flat(en, key)))
  })

  it('count in the right form: one form in Chinese, two in English', () => {
    const { t, locale } = createI18n({ legacy: false, locale: 'en', messages: { en, zh } }).global
    expect(t('queue.partitionCount', { count: 1 }, 1)).toBe('1 partition')
    expect(t('queue.partitionCount', { count: 3 }, 3)).toBe('3 partitions')
    expect(t('audit.changes', { count: 1 }, 1)).toBe('1 field changed')
    expect(t('audit.changes', { count: 2 }, 2)).toBe('2 fields changed')
    expect(t('toolTypes.inUse', { name: 'Art', n: 1 }, 1)).toBe('Art still has one tool. Move it to another tool type or delete it first.')
    expect(t('toolTypes.inUse', { name: 'Art', n: 4 }, 4)).toMatch(/^Art still has 4 tools\./)
    expect(t('toolEditor.preview.run', { n: 1 }, 1)).toBe('Run for 1 credit')
    expect(t('toolEditor.preview.from', { n: 20 }, 20)).toBe('From 20 credits')
    expect(t('toolEditor.preview.credits', { n: 1 }, 1)).toBe('1 credit')
    expect(t('toolEditor.price', { n: 0 }, 0)).toBe('price 0 credits')
    locale.value = 'zh'
    expect(t('queue.partitionCount', { count: 1 }, 1)).toBe('1 个分区')
    expect(t('queue.partitionCount', { count: 3 }, 3)).toBe('3 个分区')
    expect(t('audit.changes', { count: 2 }, 2)).toBe('变更了 2 个字段')
  })
})
