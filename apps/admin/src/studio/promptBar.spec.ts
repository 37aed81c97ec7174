import { describe, expect, it } from 'vitest'
import { applicableOptions, canSend, clampVariants, emptyDraft, findModel, isBatch, kindOf, MAX_QUOTED, messageBody, modelFor, replyCount, sendsOnEnter, type StudioProvider, withQuoted } from './promptBar'

const providers: StudioProvider[] = [
  {
    name: 'local',
    type: 'local',
    models: [
      { id: 'local-chat', kind: 'text', options: { size: ['256x256', '512x512'] } },
      { id: 'local-image', kind: 'image', options: { size: ['256x256', '512x512', '1024x1024'] } },
    ],
  },
  { name: 'openai', type: 'openai', models: [{ id: 'gpt-image-1', kind: 'image', options: { quality: ['low', 'high'] } }] },
  {
    name: 'fal',
    type: 'fal',
    models: [
      { id: 'fal-ai/clarity-upscaler', kind: 'utility', options: { upscale_factor: ['2', '3', '4'] } },
      { id: 'fal-ai/bria/background/remove', kind: 'utility', options: {} },
    ],
  },
]

describe('the prompt bar', () => {
  it('finds the chosen model, and keeps it across providers only when offered there', () => {
    expect(findModel(providers, 'local', 'local-image')?.kind).toBe('image')
    expect(findModel(providers, 'openai', 'local-image')).toBeNull()
    expect(modelFor(providers, 'openai', 'local-image')).toBe('gpt-image-1')
    expect(modelFor(providers, 'local', 'local-image')).toBe('local-image')
    expect(modelFor(providers, 'gone', 'local-image')).toBeNull()
  })

  it("sends only the options the model takes, with values it allows", () => {
    const chat = findModel(providers, 'local', 'local-chat')
    expect(applicableOptions(chat, { size: '1024x1024', quality: 'high' })).toEqual({})
    expect(applicableOptions(chat, { size: '256x256', quality: null })).toEqual({ size: '256x256' })
    expect(applicableOptions(null, { size: '256x256' })).toEqual({})
  })

  it('asks a chat model for text (no image options) and an image model for its variants', () => {
    const draft = { ...emptyDraft('local', 'local-chat'), content: '  Tell me about foxes \n', variants: 4, quoted: ['a1'], options: { size: '512x512' } }
    const text = messageBody(draft, findModel(providers, 'local', 'local-chat')!)
    expect(text).toEqual({ content: 'Tell me about foxes', kind: 'text', provider: 'local', model: 'local-chat', quoted_image_ids: ['a1'], options: {} })
    const image = messageBody({ ...draft, model: 'local-image', variants: 12 }, findModel(providers, 'local', 'local-image')!)
    expect([image.kind, image.variants]).toEqual(['image', 8])
  })

  it('asks a chat model to draw with its image tool when the draft says so', () => {
    const chat = findModel(providers, 'local', 'local-chat')!
    const draft = { ...emptyDraft('local', 'local-chat'), content: 'a fox', mode: 'image' as const, variants: 2, options: { size: '512x512' } }
    expect(kindOf(draft, chat)).toBe('image')
    expect(messageBody(draft, chat)).toMatchObject({ kind: 'image', model: 'local-chat', variants: 2, options: { size: '512x512' } })
    expect(kindOf({ ...draft, mode: 'text' }, findModel(providers, 'local', 'local-image'))).toBe('image')
  })

  it('makes a batch of one reply per quoted image, with one variant, for several images or a utility model', () => {
    const upscaler = findModel(providers, 'fal', 'fal-ai/clarity-upscaler')!
    const draft = { ...emptyDraft('fal', upscaler.id), content: 'sharper', variants: 3, quoted: ['a1', 'a2', 'a3'], options: { upscale_factor: '4' } }
    expect([kindOf(draft, upscaler), isBatch(draft, upscaler), replyCount(draft, upscaler)]).toEqual(['image', true, 3])
    expect(messageBody(draft, upscaler)).toMatchObject({ kind: 'image', variants: 1, quoted_image_ids: ['a1', 'a2', 'a3'], options: { upscale_factor: '4' } })
    const image = findModel(providers, 'local', 'local-image')!
    const one = { ...draft, provider: 'local', model: image.id, quoted: ['a1'], options: {} }
    expect([isBatch(one, image), replyCount(one, image)]).toEqual([false, 3])
    expect([isBatch({ ...one, quoted: ['a1', 'a2'] }, image), replyCount({ ...one, quoted: ['a1', 'a2'] }, image)]).toEqual([true, 2])
  })

  it('does not send a utility model without an image', () => {
    const bria = findModel(providers, 'fal', 'fal-ai/bria/background/remove')!
    const draft = { ...emptyDraft('fal', bria.id), content: 'cut out' }
    expect(canSend(draft, bria, false)).toBe(false)
    expect(canSend({ ...draft, quoted: ['a1'] }, bria, false)).toBe(true)
  })

  it('keeps variants between 1 and 8', () => {
    expect([clampVariants(null), clampVariants(0), clampVariants(3.4), clampVariants(99)]).toEqual([1, 1, 3, 8])
  })

  it('quotes an image once, and no more than the API takes', () => {
    expect(withQuoted(['a'], 'a')).toEqual(['a'])
    const full = Array.from({ length: MAX_QUOTED }, (_, i) => `a${i}`)
    expect(withQuoted(full, 'b')).toEqual(full)
    expect(withQuoted([], 'b')).toEqual(['b'])
  })

  it('sends a prompt with a model, once at a time', () => {
    const model = findModel(providers, 'local', 'local-chat')
    const draft = { ...emptyDraft('local', 'local-chat'), content: 'hi' }
    expect(canSend(draft, model, false)).toBe(true)
    expect(canSend(draft, model, true)).toBe(false)
    expect(canSend({ ...draft, content: '  ' }, model, false)).toBe(false)
    expect(canSend(draft, null, false)).toBe(false)
  })

  it('sends on Enter, not on Shift+Enter nor while composing', () => {
    expect(sendsOnEnter({ key: 'Enter', shiftKey: false, isComposing: false })).toBe(true)
    expect(sendsOnEnter({ key: 'Enter', shiftKey: true, isComposing: false })).toBe(false)
    expect(sendsOnEnter({ key: 'Enter', shiftKey: false, isComposing: true })).toBe(false)
    expect(sendsOnEnter({ key: 'a', shiftKey: false, isComposing: false })).toBe(false)
  })
})
