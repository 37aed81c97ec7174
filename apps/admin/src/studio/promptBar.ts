/**
 * The prompt bar's rules, pure: which model is chosen and what kind of answer it gives (a chat model
 * talks, or draws with its image tool when asked to; an image model always draws; drawing makes
 * `variants` images; a utility model works on each quoted image), which of the chosen options the model
 * takes, what is sent, and how the keyboard sends (Enter sends, Shift+Enter is a new line, an IME composition is neither).
 */

import type { components } from '@/api'

export type StudioProvider = components['schemas']['StudioProvider']
export type StudioModel = components['schemas']['StudioModel']
export type MessagePost = components['schemas']['MessagePost']

/** The API's limits (`MAX_VARIANTS`, `MAX_QUOTED_IMAGES` in the contracts). */
export const MAX_VARIANTS = 8
export const MAX_QUOTED = 8

export interface PromptDraft {
  content: string
  provider: string | null
  model: string | null
  /** Option name → the value chosen (null: the model's default). */
  options: Record<string, string | null>
  variants: number
  /** Asset ids of the images sent with the prompt, in the order they were quoted. */
  quoted: string[]
  /** What a chat model is asked for: talk (`text`) or draw with its image tool (`image`). */
  mode: 'text' | 'image'
}

export function emptyDraft(provider: string | null = null, model: string | null = null): PromptDraft {
  return { content: '', provider, model, options: {}, variants: 1, quoted: [], mode: 'text' }
}

/** What the draft asks for: an image or utility model always makes images; a chat model talks unless asked to draw. */
export function kindOf(draft: PromptDraft, model: StudioModel | null): 'text' | 'image' {
  return model?.kind === 'image' || model?.kind === 'utility' ? 'image' : draft.mode
}

/**
 * A batch (the API's rule): one prompt applied to each quoted image on its own, one reply (job) per image —
 * a utility model's message, or an image message quoting two or more images. A batch takes one variant.
 */
export function isBatch(draft: PromptDraft, model: StudioModel | null): boolean {
  return model?.kind === 'utility' || (kindOf(draft, model) === 'image' && draft.quoted.length > 1)
}

/** How many replies the draft will get. */
export function replyCount(draft: PromptDraft, model: StudioModel | null): number {
  if (isBatch(draft, model)) return draft.quoted.length
  return kindOf(draft, model) === 'image' ? clampVariants(draft.variants) : 1
}

/** A utility model works on images: it needs at least one quoted or uploaded. */
export function needsImage(draft: PromptDraft, model: StudioModel | null): boolean {
  return model?.kind === 'utility' && draft.quoted.length === 0
}

export function findModel(providers: readonly StudioProvider[], provider: string | null, model: string | null): StudioModel | null {
  return providers.find((p) => p.name === provider)?.models.find((m) => m.id === model) ?? null
}

/** The model to keep when the provider changes: the same id if the new provider offers it, else its first. */
export function modelFor(providers: readonly StudioProvider[], provider: string | null, model: string | null): string | null {
  const models = providers.find((p) => p.name === provider)?.models ?? []
  return models.find((m) => m.id === model)?.id ?? models[0]?.id ?? null
}

/** The chosen options the model takes, with a value it allows; the rest is left to the model's default. */
export function applicableOptions(model: StudioModel | null, chosen: Record<string, string | null>): Record<string, string> {
  const offered = model?.options ?? {}
  const applied: Record<string, string> = {}
  for (const [name, value] of Object.entries(chosen)) {
    if (value !== null && offered[name]?.includes(value)) applied[name] = value
  }
  return applied
}

export function clampVariants(value: number | null): number {
  if (value === null || !Number.isFinite(value)) return 1
  return Math.min(MAX_VARIANTS, Math.max(1, Math.round(value)))
}

/** `quoted` with one more image: once each, at most `MAX_QUOTED`. */
export function withQuoted(quoted: readonly string[], assetId: string): string[] {
  if (quoted.includes(assetId) || quoted.length >= MAX_QUOTED) return [...quoted]
  return [...quoted, assetId]
}

/** Whether the draft can go: a prompt, a model (with an image when it needs one), and nothing on its way already. */
export function canSend(draft: PromptDraft, model: StudioModel | null, sending: boolean): boolean {
  return !sending && model !== null && draft.content.trim().length > 0 && !needsImage(draft, model)
}

/** The request for a draft (`kindOf` decides text or image); options and variants only for images, one variant for a batch. */
export function messageBody(draft: PromptDraft, model: StudioModel): MessagePost {
  const kind = kindOf(draft, model)
  const body: MessagePost = {
    content: draft.content.trim(),
    kind,
    provider: draft.provider,
    model: model.id,
    quoted_image_ids: [...draft.quoted],
    options: kind === 'image' ? applicableOptions(model, draft.options) : {},
  }
  if (kind === 'image') body.variants = isBatch(draft, model) ? 1 : clampVariants(draft.variants)
  return body
}

/** Enter sends; Shift+Enter (a new line) and Enter that ends an IME composition do not. */
export function sendsOnEnter(event: { key: string; shiftKey: boolean; isComposing: boolean }): boolean {
  return event.key === 'Enter' && !event.shiftKey && !event.isComposing
}
