/** A tool type as its editor holds it, and the way to and from the API (`AdminToolTypeView` ⇄ `ToolTypeCreate`). */

import type { components } from '@/api'
import { TRANSLATED_LOCALES } from '@/tools/toolForm'

export type AdminToolType = components['schemas']['AdminToolTypeView']
export type ToolTypeBody = components['schemas']['ToolTypeCreate']

export type ToolTypeTexts = { display_name: string; description: string }

export interface ToolTypeForm {
  name: string
  displayName: string
  description: string
  icon: string
  color: string
  sortOrder: number
  isActive: boolean
  translations: Record<string, ToolTypeTexts>
  /** Translations of locales the web app does not offer, set through the API: kept as they are. */
  otherTranslations: NonNullable<ToolTypeBody['translations']>
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : ''
}

export function blankToolType(): ToolTypeForm {
  return {
    name: '', displayName: '', description: '', icon: '', color: '', sortOrder: 0, isActive: true,
    translations: Object.fromEntries(TRANSLATED_LOCALES.map((locale) => [locale, { display_name: '', description: '' }])),
    otherTranslations: {},
  }
}

export function fromToolType(type: AdminToolType): ToolTypeForm {
  const form = blankToolType()
  for (const locale of TRANSLATED_LOCALES) {
    const texts = type.translations[locale]
    const record = typeof texts === 'object' && texts !== null ? (texts as Record<string, unknown>) : {}
    form.translations[locale] = { display_name: text(record.display_name), description: text(record.description) }
  }
  return {
    ...form, name: type.name, displayName: type.display_name, description: type.description ?? '', icon: type.icon ?? '',
    color: type.color ?? '', sortOrder: type.sort_order, isActive: type.is_active,
    otherTranslations: Object.fromEntries(
      Object.entries(type.translations).filter(([locale]) => !(TRANSLATED_LOCALES as readonly string[]).includes(locale)),
    ) as ToolTypeForm['otherTranslations'],
  }
}

export function toolTypeBody(form: ToolTypeForm): ToolTypeBody {
  const translations: NonNullable<ToolTypeBody['translations']> = { ...form.otherTranslations }
  for (const [locale, texts] of Object.entries(form.translations)) {
    const entry: NonNullable<ToolTypeBody['translations']>[string] = {}
    if (texts.display_name.trim()) entry.display_name = texts.display_name.trim()
    if (texts.description.trim()) entry.description = texts.description.trim()
    if (Object.keys(entry).length) translations[locale] = entry
  }
  return {
    name: form.name.trim(),
    display_name: form.displayName.trim(),
    description: form.description.trim() || null,
    icon: form.icon.trim() || null,
    color: form.color.trim() || null,
    sort_order: form.sortOrder,
    is_active: form.isActive,
    translations,
  }
}
