/**
 * The prompt bar of an open chat: the prompt, the provider and model it goes to (the chat's, until
 * changed here for the next messages), the model's options, how many image variants, and the images
 * quoted with it (a reply's images, or an upload). Sending posts it once (a new Idempotency-Key per send,
 * so a retried request does not send twice); the API's refusal (409 while a text reply still runs) is kept
 * in `problem` for the bar to say.
 */

import { computed, type Ref, ref, watch } from 'vue'
import { api, type components } from '@/api'
import { useImageUpload } from '@/composables/useImageUpload'
import { useSubmission } from '@/composables/useSubmission'
import type { Chat } from '@/studio/chats'
import { canSend, clampVariants, emptyDraft, findModel, isBatch, kindOf, MAX_QUOTED, messageBody, modelFor, needsImage, type PromptDraft, replyCount, type StudioProvider, withQuoted } from '@/studio/promptBar'

export type PostedMessage = components['schemas']['PostedMessage']

export function usePromptBar(chat: Ref<Chat | null>, providers: Ref<readonly StudioProvider[]>, onPosted: (posted: PostedMessage) => void) {
  const draft = ref<PromptDraft>(emptyDraft())
  const model = computed(() => findModel(providers.value, draft.value.provider, draft.value.model))
  const kind = computed(() => kindOf(draft.value, model.value))
  // A batch: one reply per quoted image (a utility model, or an image message quoting several).
  const batch = computed(() => isBatch(draft.value, model.value))
  const replies = computed(() => replyCount(draft.value, model.value))
  const missingImage = computed(() => needsImage(draft.value, model.value))
  const { saving: sending, problem, clear, submit } = useSubmission()
  const uploading = useImageUpload(() => 'studio')
  const ready = computed(() => chat.value !== null && canSend(draft.value, model.value, sending.value))

  // Another chat: a fresh draft on that chat's provider and model.
  watch(
    () => chat.value?.id ?? null,
    () => {
      draft.value = emptyDraft(chat.value?.provider ?? null, chat.value?.model ?? null)
      clear()
    },
    { immediate: true },
  )

  function write(content: string): void {
    draft.value = { ...draft.value, content }
  }

  function chooseProvider(provider: string): void {
    draft.value = { ...draft.value, provider, model: modelFor(providers.value, provider, draft.value.model) }
  }

  function chooseModel(id: string): void {
    draft.value = { ...draft.value, model: id }
  }

  function chooseMode(mode: 'text' | 'image'): void {
    draft.value = { ...draft.value, mode }
  }

  function chooseOption(name: string, value: string | null): void {
    draft.value = { ...draft.value, options: { ...draft.value.options, [name]: value } }
  }

  function chooseVariants(value: number | null): void {
    draft.value = { ...draft.value, variants: clampVariants(value) }
  }

  function quote(assetId: string): void {
    draft.value = { ...draft.value, quoted: withQuoted(draft.value.quoted, assetId) }
  }

  function unquote(assetId: string): void {
    draft.value = { ...draft.value, quoted: draft.value.quoted.filter((id) => id !== assetId) }
  }

  /** Uploads an image (into the admin bucket) and quotes it once stored. */
  async function quoteUpload(file: File): Promise<void> {
    const asset = await uploading.upload(file)
    if (asset) quote(asset.id)
  }

  /** Uploads several images one after the other (a batch), as many as may still be quoted; stops at a failure. */
  async function quoteUploads(files: readonly File[]): Promise<void> {
    for (const file of files.slice(0, MAX_QUOTED - draft.value.quoted.length)) {
      const asset = await uploading.upload(file)
      if (!asset) return
      quote(asset.id)
    }
  }

  /** Sends the prompt; true when the API took it (the prompt and the quotes are then cleared). */
  async function send(): Promise<boolean> {
    const chatId = chat.value?.id
    const chosen = model.value
    if (!chatId || !chosen || !canSend(draft.value, chosen, sending.value)) return false
    const body = messageBody(draft.value, chosen)
    const posted = await submit(() =>
      api.POST('/api/admin/studio/chats/{chat_id}/messages', {
        params: { path: { chat_id: chatId } },
        body,
        headers: { 'Idempotency-Key': crypto.randomUUID() },
      }),
    )
    if (!posted) return false
    draft.value = { ...draft.value, content: '', quoted: [] }
    onPosted(posted)
    return true
  }

  return { draft, model, kind, batch, replies, missingImage, sending, problem, uploading, ready, write, chooseProvider, chooseModel, chooseMode, chooseOption, chooseVariants, quote, unquote, quoteUpload, quoteUploads, send }
}

export type PromptBar = ReturnType<typeof usePromptBar>
