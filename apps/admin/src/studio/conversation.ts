/**
 * A studio chat as the page shows it, folded from the stored messages (REST: newest first, a page at a time)
 * and the live `reply_*` events of the replies still running (the tab's one stream). Pure: the page logic is
 * tested without a server.
 *
 * - The conversation reads oldest → newest; each prompt is followed by its replies (a batch of image
 *   variants, or of quoted images each worked on alone, is one turn, its replies in order).
 * - A reply's live state is folded from its events in stream order; nothing after its end changes it.
 * - Once the stored message has ended, it is the truth (the page refetches after each terminal event); until
 *   then the live events are newer than the record.
 */

import type { components } from '@/api'
import type { StreamEvent } from '@shared/stream/userStream'

export type Message = components['schemas']['Message']
export type MessageStatus = Message['status']
export type Usage = components['schemas']['Usage']

/** A reply still on its way (queued or being written): it may be cancelled, and it is followed live. */
export function isActive(status: MessageStatus): boolean {
  return status === 'pending' || status === 'running'
}

/** The loaded pages (each newest first, each older than the one before) as one list, oldest first; a
 * message a refetch moved onto the next page is listed once. */
export function oldestFirst(pages: readonly { items: readonly Message[] }[]): Message[] {
  const seen = new Set<string>()
  const newestFirst: Message[] = []
  for (const page of pages) {
    for (const message of page.items) {
      if (seen.has(message.id)) continue
      seen.add(message.id)
      newestFirst.push(message)
    }
  }
  return newestFirst.reverse()
}

/** One prompt and what answered it; `prompt` is null when the prompt is on a page not loaded yet. */
export interface Turn {
  key: string
  prompt: Message | null
  replies: Message[]
}

/** Messages (oldest first) as turns: each reply joins the prompt it answers (its `batch_id`). */
export function turns(messages: readonly Message[]): Turn[] {
  const list: Turn[] = []
  const byPrompt = new Map<string, Turn>()
  for (const message of messages) {
    if (message.role === 'user') {
      const turn: Turn = { key: message.id, prompt: message, replies: [] }
      byPrompt.set(message.id, turn)
      list.push(turn)
      continue
    }
    const batch = message.batch_id ?? message.id
    let turn = byPrompt.get(batch)
    if (turn === undefined) {
      turn = { key: batch, prompt: null, replies: [] }
      byPrompt.set(batch, turn)
      list.push(turn)
    }
    turn.replies.push(message)
  }
  for (const turn of list) turn.replies.sort((a, b) => (a.variant ?? 0) - (b.variant ?? 0))
  return list
}

/** Why a reply waits (a rate limit, the provider's 429) and until when; it has not failed. */
export interface Delay {
  reason: string
  retryAt: string | null
}

/** What the stream has said about one reply so far. */
export interface LiveReply {
  status: MessageStatus
  /** The text the deltas built (null before the first one); the completed event's full text replaces it. */
  text: string | null
  /** The provider call the deltas came from: a retried reply's new call starts its text (and preview) over. */
  run: string | null
  /** The newest partial image (a small `data:` JPEG preview) and its index, until the final images. */
  preview: { index: number; image: string } | null
  /** The final images' asset ids. */
  images: string[]
  usage: Usage | null
  error: string | null
  code: string | null
  delay: Delay | null
}

export const WAITING: LiveReply = {
  status: 'pending',
  text: null,
  run: null,
  preview: null,
  images: [],
  usage: null,
  error: null,
  code: null,
  delay: null,
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0
}

function assetIds(value: unknown): string[] {
  if (!Array.isArray(value)) return []
  return value.flatMap((image: unknown) => {
    const id = typeof image === 'object' && image !== null ? text((image as Record<string, unknown>).assetId) : null
    return id ? [id] : []
  })
}

function usageOf(value: unknown): Usage | null {
  if (typeof value !== 'object' || value === null) return null
  const usage = value as Record<string, unknown>
  return { input_tokens: count(usage.input_tokens), output_tokens: count(usage.output_tokens), total_tokens: count(usage.total_tokens) }
}

/** The reply as a piece of `run` finds it: a new run (the provider called again) starts over. */
function ofRun(live: LiveReply, run: string | null): LiveReply {
  if (run === null || run === live.run) return live
  return { ...live, run, text: live.run === null ? live.text : null, preview: live.run === null ? live.preview : null }
}

/** The reply's state after one of its events. */
export function onReplyEvent(live: LiveReply, event: StreamEvent): LiveReply {
  if (!isActive(live.status)) return live
  const data = event.data
  switch (event.type) {
    case 'reply_started':
      return { ...live, status: 'running', delay: null }
    case 'reply_delayed':
      return { ...live, delay: { reason: text(data.reason) ?? '', retryAt: text(data.retryAt) } }
    case 'reply_delta': {
      const current = ofRun(live, text(data.run))
      return { ...current, status: 'running', delay: null, text: (current.text ?? '') + (text(data.text) ?? '') }
    }
    case 'reply_partial_image': {
      const current = ofRun(live, text(data.run))
      const image = text(data.image)
      const index = count(data.index)
      // Only a picture is shown (never another scheme), and an older preview never replaces a newer one.
      if (image === null || !image.startsWith('data:image/') || (current.preview && current.preview.index > index)) return current
      return { ...current, status: 'running', delay: null, preview: { index, image } }
    }
    case 'reply_completed':
      return { ...live, status: 'completed', delay: null, text: text(data.content) ?? live.text, images: assetIds(data.images), usage: usageOf(data.usage) }
    case 'reply_failed':
      return { ...live, status: 'failed', delay: null, error: text(data.error), code: text(data.code) }
    case 'reply_cancelled':
      return { ...live, status: 'cancelled', delay: null }
    default:
      return live
  }
}

/** A reply as the page shows it. */
export interface ReplyView {
  id: string
  kind: Message['kind']
  status: MessageStatus
  text: string
  preview: string | null
  images: string[]
  usage: Usage | null
  error: string | null
  delay: Delay | null
  variant: number | null
  /** The one image an image reply worked on (a batch applies its prompt to each image on its own). */
  source: string | null
}

/** Tokens worth showing: none counted (an image model's reply) shows nothing rather than zeros. */
function counted(usage: Usage | null | undefined): Usage | null {
  return usage && (usage.total_tokens ?? 0) > 0 ? usage : null
}

/** The stored reply with what the stream said since, while the record has not caught up. */
export function replyView(message: Message, live: LiveReply | undefined): ReplyView {
  const stored: ReplyView = {
    id: message.id,
    kind: message.kind,
    status: message.status,
    text: message.content,
    preview: null,
    images: message.images.map((image) => image.asset_id),
    usage: counted(message.usage),
    error: message.error_message ?? message.error_code ?? null,
    delay: null,
    variant: message.variant ?? null,
    source: message.kind === 'image' && message.quoted_image_ids.length === 1 ? message.quoted_image_ids[0]! : null,
  }
  if (live === undefined || !isActive(message.status)) return stored
  return {
    ...stored,
    // `pending` is where every live state starts: the record may already know the reply runs.
    status: live.status === 'pending' ? message.status : live.status,
    text: live.text ?? message.content,
    preview: live.preview?.image ?? null,
    images: live.images.length > 0 ? live.images : stored.images,
    usage: counted(live.usage) ?? stored.usage,
    error: live.error ?? live.code ?? stored.error,
    delay: live.delay,
  }
}

/** The ids of the replies among `messages` that still run (to follow them on the stream). */
export function activeReplies(messages: readonly Message[]): string[] {
  return messages.filter((message) => message.role === 'assistant' && isActive(message.status)).map((message) => message.id)
}
