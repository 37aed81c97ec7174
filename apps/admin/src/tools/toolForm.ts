/**
 * A tool as the admin editor holds it, and the way to and from the API: the form state (flat, with plain
 * strings where inputs edit them), built from `AdminToolView` and turned into the `ToolCreate` body;
 * the step form's choices from the step types' schema (`/api/admin/step-types`) and the configured
 * providers; option defaults; the price; the preview's texts in a locale; the API's refusals by field.
 *
 * Pure functions only (no Vue, no calls): `useToolForm` wires them to queries and the page.
 */

import type { components } from '@/api'
import { LOCALES } from '@shared/i18n/locales'

type Schemas = components['schemas']
export type AdminTool = Schemas['AdminToolView']
export type ToolBody = Schemas['ToolCreate']
export type StepTypeCatalog = Schemas['StepTypeCatalog']
export type ProviderSupport = Schemas['StepProviderSupport']
export type OptionField = Schemas['StepOptionField']
export type Provider = Schemas['Provider']
export type StepType = Schemas['StepConfig']['type']
export type StepChoice = Schemas['StepChoiceConfig']
export type InputMode = 'required' | 'optional' | 'none'
export type OptionValue = string | number | boolean | null

export const STEP_TYPES: readonly StepType[] = ['image-gen', 'remove-bg', '3d-gen', 'point-cloud']
/** Step types that only work on an image (the tasks service refuses `input.image: none` for them). */
export const IMAGE_ONLY: readonly StepType[] = ['remove-bg', 'point-cloud']
export const INPUT_MODES: readonly InputMode[] = ['required', 'optional', 'none']
export const MAX_STEPS = 8
export const MAX_STYLES = 16
export const LOCAL = 'local'
/** The web app's locales but English, whose texts are the tool's own fields. */
export const TRANSLATED_LOCALES = LOCALES.filter((locale) => locale !== 'en')
export const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/

export interface StepState {
  /** Stable while the step is edited (its `id` may change): list keys and translations use it. */
  key: string
  id: string
  name: string
  type: StepType
  provider: string
  model: string
  options: Record<string, OptionValue>
  cost: number
  timeoutSeconds: number
  prompt: string
  image: InputMode
  promptMode: InputMode
  /** image-gen steps: send the chosen style reference's image with the user's (the style's prompt is used either way). */
  useStyleImage: boolean
  /** The providers users may choose per request (the step's own must be one); edited as JSON. */
  choices: StepChoice[]
}

export interface StyleState {
  key: string
  id: string
  name: string
  prompt: string
  assetId: string | null
  imageUrl: string | null
}

export type LocaleTexts = {
  title: string
  description: string
  /** Translated names by step `key`. */
  steps: Record<string, string>
  /** Translated names by style reference `key`. */
  styles: Record<string, string>
}

export interface ToolForm {
  slug: string
  title: string
  description: string
  toolTypeId: string | null
  thumbnailAssetId: string | null
  thumbnailUrl: string | null
  steps: StepState[]
  styles: StyleState[]
  pipeline: boolean
  isActive: boolean
  isFeatured: boolean
  translations: Record<string, LocaleTexts>
  /** Translations of locales the web app does not offer (`de-AT`…), set through the API: kept as they are. */
  otherTranslations: NonNullable<ToolBody['translations']>
}

let keys = 0
export function newKey(): string {
  keys += 1
  return `k${keys}`
}

// --- the schema ------------------------------------------------------------------------------------------

export function supportFor(catalog: StepTypeCatalog | undefined, stepType: string, providerType: string): ProviderSupport | null {
  const entry = catalog?.items.find((item) => item.type === stepType)
  return entry?.providers.find((provider) => provider.type === providerType) ?? null
}

/** The provider type behind a name a step uses: a configured provider's, else `local` for the built-in one. */
export function providerTypeOf(providers: readonly Provider[], name: string): string | null {
  const configured = providers.find((provider) => provider.name === name)
  if (configured) return configured.type
  return name === LOCAL ? LOCAL : null
}

export interface ProviderChoice {
  name: string
  type: string
  active: boolean
}

/** The providers a step of `stepType` can name: configured ones whose type runs it, and `local`, which always exists. */
export function providerChoices(catalog: StepTypeCatalog | undefined, providers: readonly Provider[], stepType: string): ProviderChoice[] {
  const choices = providers
    .filter((provider) => supportFor(catalog, stepType, provider.type) !== null)
    .map((provider) => ({ name: provider.name, type: provider.type, active: provider.is_active }))
  if (!choices.some((choice) => choice.name === LOCAL) && supportFor(catalog, stepType, LOCAL)) {
    choices.push({ name: LOCAL, type: LOCAL, active: true })
  }
  return choices
}

/** The option values a step starts with: every field's default (fields without one stay unset). */
export function optionDefaults(fields: readonly OptionField[]): Record<string, OptionValue> {
  const values: Record<string, OptionValue> = {}
  for (const field of fields) {
    const value = field.default
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') values[field.name] = value
  }
  return values
}

/** A step moved to another provider (or its type changed): the provider's first model and its defaults. */
export function withProvider(step: StepState, catalog: StepTypeCatalog | undefined, providers: readonly Provider[], name: string): StepState {
  const support = supportFor(catalog, step.type, providerTypeOf(providers, name) ?? '')
  return { ...step, provider: name, model: support?.models[0] ?? 'default', options: optionDefaults(support?.options ?? []) }
}

export function withType(step: StepState, catalog: StepTypeCatalog | undefined, providers: readonly Provider[], type: StepType): StepState {
  const changed = { ...step, type, image: IMAGE_ONLY.includes(type) && step.image === 'none' ? ('required' as const) : step.image }
  const stillRuns = providerChoices(catalog, providers, type).some((choice) => choice.name === step.provider)
  return withProvider(changed, catalog, providers, stillRuns ? step.provider : LOCAL)
}

/** A new step: the first free `step-N` id, image generation on the built-in provider. */
export function newStep(steps: readonly StepState[], catalog: StepTypeCatalog | undefined, providers: readonly Provider[]): StepState {
  let n = steps.length + 1
  while (steps.some((step) => step.id === `step-${n}`)) n += 1
  const blank: StepState = {
    key: newKey(), id: `step-${n}`, name: '', type: 'image-gen', provider: LOCAL, model: 'default', options: {},
    cost: 0, timeoutSeconds: 600, prompt: '', image: steps.length === 0 ? 'required' : 'optional', promptMode: 'optional',
    useStyleImage: true, choices: [],
  }
  return withProvider(blank, catalog, providers, LOCAL)
}

export function newStyle(styles: readonly StyleState[]): StyleState {
  let n = styles.length + 1
  while (styles.some((style) => style.id === `style-${n}`)) n += 1
  return { key: newKey(), id: `style-${n}`, name: '', prompt: '', assetId: null, imageUrl: null }
}

export function blankTexts(): LocaleTexts {
  return { title: '', description: '', steps: {}, styles: {} }
}

export function blankTool(): ToolForm {
  return {
    slug: '', title: '', description: '', toolTypeId: null, thumbnailAssetId: null, thumbnailUrl: null,
    steps: [], styles: [], pipeline: true, isActive: false, isFeatured: false,
    translations: Object.fromEntries(TRANSLATED_LOCALES.map((locale) => [locale, blankTexts()])),
    otherTranslations: {},
  }
}

/** `list` with the item at `index` moved by `delta` places (unchanged at the ends). */
export function moved<T>(list: readonly T[], index: number, delta: number): T[] {
  const target = index + delta
  if (index < 0 || index >= list.length || target < 0 || target >= list.length) return [...list]
  const copy = [...list]
  const [item] = copy.splice(index, 1)
  copy.splice(target, 0, item as T)
  return copy
}

export function price(steps: readonly { cost: number | null }[]): number {
  return steps.reduce((sum, step) => sum + (Number.isFinite(step.cost) ? Number(step.cost) : 0), 0)
}

// --- from and to the API -------------------------------------------------------------------------------------

function mode(value: string | undefined): InputMode {
  return value === 'required' || value === 'none' ? value : 'optional'
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : ''
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
}

function optionValue(value: unknown): OptionValue {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : null
}

/** A choice as the API shows it, as the body sends it (nulls left out). */
function choiceOf(choice: Schemas['StepChoiceView']): StepChoice {
  const options: StepChoice['options'] = {}
  for (const [name, rule] of Object.entries(choice.options)) {
    options[name] = Object.fromEntries(Object.entries(rule).filter(([, value]) => value !== null && value !== undefined)) as NonNullable<StepChoice['options']>[string]
  }
  return { provider: choice.provider, label: choice.label, models: choice.models, options }
}

export function fromTool(tool: AdminTool): ToolForm {
  const steps: StepState[] = tool.config.steps.map((step) => ({
    key: newKey(),
    id: step.id,
    name: step.name,
    type: (STEP_TYPES as readonly string[]).includes(step.type) ? (step.type as StepType) : 'image-gen',
    provider: step.provider.name,
    model: step.provider.model,
    options: Object.fromEntries(Object.entries(step.provider.options).map(([name, value]) => [name, optionValue(value)])),
    cost: step.cost,
    timeoutSeconds: step.timeoutSeconds,
    prompt: step.prompt ?? '',
    image: mode(step.input.image),
    promptMode: mode(step.input.prompt),
    useStyleImage: step.useStyleImage ?? true,
    choices: (step.choices ?? []).map(choiceOf),
  }))
  const styles: StyleState[] = tool.config.styleReferences.map((style) => ({
    key: newKey(), id: style.id, name: style.name, prompt: style.prompt, assetId: style.assetId ?? null, imageUrl: style.image_url ?? null,
  }))
  const translations: Record<string, LocaleTexts> = {}
  for (const locale of TRANSLATED_LOCALES) {
    const texts = record(tool.translations[locale])
    const stepNames = record(texts.steps)
    const styleNames = record(texts.styleReferences)
    translations[locale] = {
      title: text(texts.title),
      description: text(texts.description),
      steps: Object.fromEntries(steps.map((step) => [step.key, text(record(stepNames[step.id]).name)])),
      styles: Object.fromEntries(styles.map((style) => [style.key, text(record(styleNames[style.id]).name)])),
    }
  }
  return {
    slug: tool.slug, title: tool.title, description: tool.description, toolTypeId: tool.tool_type_id,
    thumbnailAssetId: tool.thumbnail_asset_id ?? null, thumbnailUrl: tool.thumbnail_url ?? null,
    steps, styles, pipeline: tool.config.pipeline, isActive: tool.is_active, isFeatured: tool.is_featured, translations,
    otherTranslations: Object.fromEntries(
      Object.entries(tool.translations).filter(([locale]) => !(TRANSLATED_LOCALES as readonly string[]).includes(locale)),
    ) as ToolForm['otherTranslations'],
  }
}

/** Only the options that say something: unset and empty ones are left to the provider's default. */
export function cleanOptions(options: Record<string, OptionValue>): Record<string, string | number | boolean> {
  const clean: Record<string, string | number | boolean> = {}
  for (const [name, value] of Object.entries(options)) {
    if (value === null || (typeof value === 'string' && value.trim() === '') || (typeof value === 'number' && !Number.isFinite(value))) continue
    clean[name] = typeof value === 'string' ? value.trim() : value
  }
  return clean
}

function names(items: readonly { key: string; id: string }[], translated: Record<string, string>) {
  const entries = items.filter((item) => (translated[item.key] ?? '').trim() !== '').map((item) => [item.id, { name: (translated[item.key] ?? '').trim() }])
  return entries.length ? Object.fromEntries(entries) : undefined
}

/** The translations worth sending: locales with at least one text, each text trimmed, empty ones left out. */
export function translationsBody(form: ToolForm): NonNullable<ToolBody['translations']> {
  const body: NonNullable<ToolBody['translations']> = {}
  for (const [locale, texts] of Object.entries(form.translations)) {
    const entry: NonNullable<ToolBody['translations']>[string] = {}
    if (texts.title.trim()) entry.title = texts.title.trim()
    if (texts.description.trim()) entry.description = texts.description.trim()
    const steps = names(form.steps, texts.steps)
    if (steps) entry.steps = steps
    const styles = names(form.styles, texts.styles)
    if (styles) entry.styleReferences = styles
    if (Object.keys(entry).length) body[locale] = entry
  }
  return body
}

export function toBody(form: ToolForm): ToolBody {
  return {
    slug: form.slug.trim(),
    title: form.title.trim(),
    description: form.description.trim() || null,
    thumbnail_asset_id: form.thumbnailAssetId,
    tool_type_id: form.toolTypeId ?? '',
    is_active: form.isActive,
    is_featured: form.isFeatured,
    config: {
      pipeline: form.pipeline,
      steps: form.steps.map((step) => ({
        id: step.id.trim(),
        name: step.name.trim(),
        type: step.type,
        provider: { name: step.provider, model: step.model.trim() || 'default', options: cleanOptions(step.options) },
        cost: step.cost,
        timeoutSeconds: step.timeoutSeconds,
        prompt: step.prompt.trim() || null,
        input: { image: step.image, prompt: step.promptMode },
        useStyleImage: step.useStyleImage,
        ...(step.choices.length ? { choices: step.choices } : {}),
      })),
      styleReferences: form.styles.map((style) => ({ id: style.id.trim(), name: style.name.trim(), prompt: style.prompt.trim(), assetId: style.assetId })),
    },
    translations: { ...form.otherTranslations, ...translationsBody(form) },
  }
}

// --- what users will see ----------------------------------------------------------------------------------

export interface Preview {
  title: string
  description: string
  steps: { key: string; name: string; cost: number }[]
  styles: { key: string; name: string; imageUrl: string | null }[]
  price: number
  image: InputMode
  prompt: InputMode
}

/** The tool's page in `locale`: each text translated where the admin gave one, else the English one. */
export function previewOf(form: ToolForm, locale: string): Preview {
  const texts = form.translations[locale] ?? blankTexts()
  const pick = (translated: string | undefined, base: string) => (translated ?? '').trim() || base
  const first = form.steps[0]
  return {
    title: pick(texts.title, form.title),
    description: pick(texts.description, form.description),
    steps: form.steps.map((step) => ({ key: step.key, name: pick(texts.steps[step.key], step.name), cost: step.cost })),
    // Styles stand in for a prompt: a first step that takes none shows none (as the web app does).
    styles: first?.promptMode === 'none' ? [] : form.styles.map((style) => ({ key: style.key, name: pick(texts.styles[style.key], style.name), imageUrl: style.imageUrl })),
    price: price(form.steps),
    image: first?.image ?? 'none',
    prompt: first?.promptMode ?? 'none',
  }
}

// --- refusals -------------------------------------------------------------------------------------------------

/** A field path as the API names it: `config.steps[0].provider.name`. */
export function pathOf(loc: readonly (string | number)[]): string {
  return loc.reduce<string>((path, part) => (/^\d+$/.test(String(part)) ? `${path}[${part}]` : path ? `${path}.${part}` : String(part)), '')
}

// Conflicts the API reports without a field: the field they are about.
const CONFLICT_FIELDS: Record<string, string> = { tool_exists: 'slug', tool_type_exists: 'name' }

/**
 * A refusal's messages by field path: the edge's validation (`errors: [{loc, msg}]`, 422) and the
 * service's own rules (`field` + `detail`), both as `{ "config.steps[1].cost": "…" }`; a refusal about no
 * field in particular under `""`.
 */
export function fieldErrors(body: unknown): Record<string, string> {
  const problem = record(body)
  const errors: Record<string, string> = {}
  if (Array.isArray(problem.errors)) {
    for (const item of problem.errors) {
      const error = record(item)
      const loc = Array.isArray(error.loc) ? error.loc.filter((part): part is string | number => typeof part === 'string' || typeof part === 'number') : []
      const path = pathOf(loc)
      errors[path] ??= text(error.msg) || text(problem.detail)
    }
  }
  const field = text(problem.field) || CONFLICT_FIELDS[text(problem.code)] || ''
  // The service's detail starts with the field it names (`slug: …`): beside the field, that is said already.
  // Only the server's own sentence: its `title` is English, and the alert over the errors says the rest.
  const said = text(problem.detail)
  const detail = field && said.startsWith(`${field}: `) ? said.slice(field.length + 2) : said
  if (Object.keys(errors).length === 0 && detail) errors[field] = detail
  return errors
}

/** The messages under a path (the path itself first), for a part of the form that shows its own. */
export function errorsUnder(errors: Record<string, string>, prefix: string): string[] {
  return Object.entries(errors)
    .filter(([path]) => path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`))
    .map(([, message]) => message)
}
