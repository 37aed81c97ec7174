import { describe, expect, it } from 'vitest'
import { effectScope } from 'vue'
import { type StreamResponse, type Timers, UserStream } from '@shared/stream/userStream'
import { useStudioStream } from './useStudioStream'

/** The stream's network: one open response the test writes SSE frames into. */
function network() {
  const encoder = new TextEncoder()
  let controller: ReadableStreamDefaultController<Uint8Array> | null = null
  let opened: () => void = () => {}
  const open = new Promise<void>((resolve) => (opened = resolve))
  const transport = async (): Promise<StreamResponse> => {
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) })
    opened()
    return { status: 200, body }
  }
  const send = (type: string, data: object) => controller?.enqueue(encoder.encode(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`))
  return { transport, open, send }
}

const timers: Timers = { setTimeout: () => 0, clearTimeout: () => {}, random: () => 0 }
const flush = () => new Promise((resolve) => setTimeout(resolve, 0))

describe('the studio stream', () => {
  it('folds the events of the replies it follows, and says once when each ended', async () => {
    const net = network()
    const stream = new UserStream({ transport: net.transport, timers })
    const ended: string[] = []
    const scope = effectScope()
    const studio = scope.run(() => useStudioStream((id) => ended.push(id), stream, () => stream.stop()))!
    studio.follow('r1')
    studio.follow('r1') // once, however often asked
    await net.open
    await flush()
    expect(studio.connection.value).toBe('open')

    net.send('reply_delta', { messageId: 'r1', text: 'Foxes' })
    net.send('reply_delta', { messageId: 'other', text: 'not followed' })
    net.send('reply_delta', { messageId: 'r1', text: ' run' })
    await flush()
    expect(studio.live.value.r1?.text).toBe('Foxes run')
    expect(studio.live.value.other).toBeUndefined()

    net.send('reply_completed', { messageId: 'r1', chatId: 'c1', content: 'Foxes run fast.', images: [], usage: {} })
    net.send('reply_completed', { messageId: 'r1', chatId: 'c1', content: 'again', images: [], usage: {} })
    await flush()
    expect(ended).toEqual(['r1'])
    expect(studio.live.value.r1).toMatchObject({ status: 'completed', text: 'Foxes run fast.' })

    studio.forget()
    expect(studio.live.value).toEqual({})
    scope.stop()
    expect(stream.state).toBe('closed')
  })
})
