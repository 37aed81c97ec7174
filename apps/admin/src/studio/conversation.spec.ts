import { describe, expect, it } from 'vitest'
import type { StreamEvent } from '@shared/stream/userStream'
import { activeReplies, isActive, type LiveReply, type Message, oldestFirst, onReplyEvent, replyView, turns, WAITING } from './conversation'

function message(id: string, fields: Partial<Message> = {}): Message {
  return {
    id,
    chat_id: 'chat-1',
    role: 'assistant',
    kind: 'text',
    content: '',
    quoted_image_ids: [],
    provider: 'local',
    model: 'local-chat',
    images: [],
    status: 'completed',
    created_at: '2025-01-01T00:00:00Z',
    ...fields,
  }
}

function event(type: StreamEvent['type'], data: Record<string, unknown>, messageId = 'r1'): StreamEvent {
  return { id: null, type, taskId: null, messageId, data: { messageId, ...data } }
}

function play(...events: StreamEvent[]): LiveReply {
  return events.reduce(onReplyEvent, WAITING)
}

describe('a studio conversation', () => {
  it('reads the newest-first pages oldest first, each message once', () => {
    const pages = [{ items: [message('c'), message('b')] }, { items: [message('b'), message('a')] }]
    expect(oldestFirst(pages).map((m) => m.id)).toEqual(['a', 'b', 'c'])
  })

  it('puts each reply under the prompt it answers, variants in order', () => {
    const list = [
      message('p1', { role: 'user' }),
      message('r1', { batch_id: 'p1' }),
      message('p2', { role: 'user', kind: 'image' }),
      message('v1', { batch_id: 'p2', kind: 'image', variant: 1 }),
      message('v0', { batch_id: 'p2', kind: 'image', variant: 0 }),
    ]
    expect(turns(list).map((t) => [t.prompt?.id ?? null, t.replies.map((r) => r.id)])).toEqual([
      ['p1', ['r1']],
      ['p2', ['v0', 'v1']],
    ])
  })

  it('keeps the variants of a prompt not loaded yet together', () => {
    const list = [message('v0', { batch_id: 'old', variant: 0 }), message('v1', { batch_id: 'old', variant: 1 }), message('p', { role: 'user' })]
    expect(turns(list).map((t) => [t.key, t.prompt?.id ?? null, t.replies.length])).toEqual([
      ['old', null, 2],
      ['p', 'p', 0],
    ])
  })

  it('follows only the replies still on their way', () => {
    const list = [message('p', { role: 'user', status: 'pending' }), message('a', { status: 'running' }), message('b', { status: 'pending' }), message('c')]
    expect(activeReplies(list)).toEqual(['a', 'b'])
    expect(['pending', 'running'].every((s) => isActive(s as Message['status']))).toBe(true)
  })
})

describe('a reply folded from its events', () => {
  it('builds the text from the deltas, then takes the full text of the end', () => {
    const writing = play(event('reply_started', { attempt: 1 }), event('reply_delta', { text: 'Foxes' }), event('reply_delta', { text: ' are' }))
    expect([writing.status, writing.text]).toEqual(['running', 'Foxes are'])
    const done = onReplyEvent(
      writing,
      event('reply_completed', { content: 'Foxes are quick.', images: [{ assetId: 'img-1', role: 'image', url: '/api/admin/assets/img-1' }], usage: { input_tokens: 3, output_tokens: 4, total_tokens: 7 } }),
    )
    expect(done).toMatchObject({ status: 'completed', text: 'Foxes are quick.', images: ['img-1'], usage: { input_tokens: 3, output_tokens: 4, total_tokens: 7 } })
  })

  it('starts the text over when the provider is called again (a new run)', () => {
    const first = play(event('reply_delta', { run: 'a', text: 'Foxes ar' }))
    const retried = onReplyEvent(onReplyEvent(first, event('reply_delta', { run: 'b', text: 'Foxes' })), event('reply_delta', { run: 'b', text: ' run' }))
    expect(retried.text).toBe('Foxes run')
    expect(onReplyEvent(retried, event('reply_delta', { run: 'b', text: '!' })).text).toBe('Foxes run!')
  })

  it('says a delayed reply waits (not failed) until it starts again', () => {
    const waiting = play(event('reply_delayed', { reason: 'rate_limited', retryAt: '2025-01-01T00:01:00Z' }))
    expect(waiting.status).toBe('pending')
    expect(waiting.delay).toEqual({ reason: 'rate_limited', retryAt: '2025-01-01T00:01:00Z' })
    expect(onReplyEvent(waiting, event('reply_started', { attempt: 2 })).delay).toBeNull()
  })

  it('shows the newest partial image, and pictures only', () => {
    const second = play(event('reply_partial_image', { index: 1, image: 'data:image/jpeg;base64,BBB' }))
    expect(onReplyEvent(second, event('reply_partial_image', { index: 0, image: 'data:image/jpeg;base64,AAA' })).preview?.image).toBe('data:image/jpeg;base64,BBB')
    expect(onReplyEvent(second, event('reply_partial_image', { index: 2, image: 'javascript:alert(1)' }))).toBe(second)
  })

  it('ends once: failed with its error, cancelled, and nothing after', () => {
    const failed = play(event('reply_failed', { error: 'the provider refused', code: 'provider_error' }), event('reply_delta', { text: 'late' }))
    expect(failed).toMatchObject({ status: 'failed', error: 'the provider refused', code: 'provider_error', text: null })
    expect(play(event('reply_cancelled', {}), event('reply_completed', { content: 'x' })).status).toBe('cancelled')
  })
})

describe('a reply as the page shows it', () => {
  it('shows the live state while the record has not ended', () => {
    const live = play(event('reply_delta', { text: 'Fox' }))
    expect(replyView(message('r1', { status: 'pending' }), live)).toMatchObject({ status: 'running', text: 'Fox' })
    // The record already knows the reply runs; the stream has said nothing yet.
    expect(replyView(message('r1', { status: 'running' }), WAITING).status).toBe('running')
  })

  it('trusts the record once it has ended', () => {
    const live = play(event('reply_delta', { text: 'Fox' }))
    const stored = message('r1', { status: 'completed', content: 'Foxes are quick.', images: [{ asset_id: 'img-1' }], usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 } })
    expect(replyView(stored, live)).toMatchObject({ status: 'completed', text: 'Foxes are quick.', images: ['img-1'], usage: { total_tokens: 3 } })
  })

  it('shows no token count where none was counted', () => {
    expect(replyView(message('r1', { usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0 } }), undefined).usage).toBeNull()
  })

  it("says why a stored reply failed, by its message or else its code", () => {
    expect(replyView(message('r1', { status: 'failed', error_code: 'timeout' }), undefined).error).toBe('timeout')
    expect(replyView(message('r1', { status: 'failed', error_code: 'x', error_message: 'took too long' }), undefined).error).toBe('took too long')
    expect(replyView(message('r1', { kind: 'image', quoted_image_ids: ['img-9'] }), undefined).source).toBe('img-9')
    expect(replyView(message('r1', { kind: 'text', quoted_image_ids: ['img-9'] }), undefined).source).toBeNull()
  })
})
