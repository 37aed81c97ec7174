import { describe, expect, it } from 'vitest'
import { isTerminal, type StreamEvent, type StreamResponse, type Timers, UserStream } from './userStream'

/** A server the test drives: each connection is a stream it writes frames into, or an error status. */
class FakeServer {
  connections: { lastEventId: string | null; controller: ReadableStreamDefaultController<Uint8Array> | null; signal: AbortSignal }[] = []
  nextStatus: number[] = []
  private readonly encoder = new TextEncoder()
  private waiters: (() => void)[] = []

  transport = async (_url: string, lastEventId: string | null, signal: AbortSignal): Promise<StreamResponse> => {
    const status = this.nextStatus.shift() ?? 200
    if (status !== 200) {
      this.connections.push({ lastEventId, controller: null, signal })
      this.notify()
      return { status, body: null }
    }
    let controller: ReadableStreamDefaultController<Uint8Array> | null = null
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c
      },
    })
    signal.addEventListener('abort', () => controller?.error(new Error('aborted')))
    this.connections.push({ lastEventId, controller, signal })
    this.notify()
    return { status: 200, body }
  }

  send(text: string, connection = this.connections.length - 1): void {
    this.connections[connection]?.controller?.enqueue(this.encoder.encode(text))
  }

  drop(connection = this.connections.length - 1): void {
    this.connections[connection]?.controller?.close()
  }

  async waitForConnections(count: number): Promise<void> {
    while (this.connections.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve))
  }

  private notify(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const resolve of waiters) resolve()
  }
}

/** Timers that fire only when the test says so, so backoff and heartbeat timeouts are exact. */
class ManualTimers implements Timers {
  pending = new Map<number, { at: number; callback: () => void }>()
  now = 0
  private next = 1
  setTimeout(callback: () => void, ms: number): unknown {
    const handle = this.next++
    this.pending.set(handle, { at: this.now + ms, callback })
    return handle
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number)
  }
  random(): number {
    return 1 // no jitter: delays are the backoff's upper bound
  }
  advance(ms: number): number[] {
    this.now += ms
    const fired: number[] = []
    for (const [handle, timer] of [...this.pending].sort((a, b) => a[1].at - b[1].at)) {
      if (timer.at <= this.now) {
        this.pending.delete(handle)
        fired.push(timer.at)
        timer.callback()
      }
    }
    return fired
  }
  delays(): number[] {
    return [...this.pending.values()].map((t) => t.at - this.now)
  }
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0))

function frame(id: string, type: string, data: object): string {
  return `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`
}

describe('UserStream', () => {
  it('routes each event to the subscribers of its task only', async () => {
    const server = new FakeServer()
    const stream = new UserStream({ transport: server.transport, timers: new ManualTimers() })
    const first: StreamEvent[] = []
    const second: StreamEvent[] = []
    stream.subscribe('task-1', (e) => first.push(e))
    stream.subscribe('task-2', (e) => second.push(e))
    await server.waitForConnections(1)

    server.send(frame('1-0', 'progress', { taskId: 'task-1', progress: 10 }))
    server.send(frame('2-0', 'completed', { taskId: 'task-2' }))
    await flush()

    expect(first.map((e) => [e.type, e.data.progress])).toEqual([['progress', 10]])
    expect(second.map((e) => e.type)).toEqual(['completed'])
    expect(server.connections).toHaveLength(1) // two tasks, one connection
    stream.stop()
  })

  it("routes a studio reply's events by its message id, and knows the reply's ends", async () => {
    const server = new FakeServer()
    const stream = new UserStream({ transport: server.transport, timers: new ManualTimers() })
    const reply: StreamEvent[] = []
    const other: StreamEvent[] = []
    stream.subscribe('message-1', (e) => reply.push(e))
    stream.subscribe('message-2', (e) => other.push(e))
    await server.waitForConnections(1)

    server.send(frame('1-0', 'reply_started', { messageId: 'message-1', attempt: 1 }))
    server.send(frame('2-0', 'reply_delta', { messageId: 'message-1', text: 'Foxes' }))
    server.send(frame('3-0', 'progress', { taskId: 'task-1', progress: 10 }))
    server.send(frame('4-0', 'reply_completed', { messageId: 'message-1', chatId: 'chat-1', content: 'Foxes are quick.' }))
    await flush()

    expect(reply.map((e) => [e.type, e.messageId, e.taskId])).toEqual([
      ['reply_started', 'message-1', null],
      ['reply_delta', 'message-1', null],
      ['reply_completed', 'message-1', null],
    ])
    expect(reply[1]?.data.text).toBe('Foxes')
    expect(other).toEqual([])
    expect(['reply_completed', 'reply_failed', 'reply_cancelled'].every(isTerminal)).toBe(true)
    expect(['reply_started', 'reply_delayed', 'reply_delta', 'reply_partial_image'].some(isTerminal)).toBe(false)
    stream.stop()
  })

  it('resumes after a drop from the last event id it saw', async () => {
    const server = new FakeServer()
    const timers = new ManualTimers()
    const stream = new UserStream({ transport: server.transport, timers })
    const seen: string[] = []
    stream.subscribe('t', (e) => seen.push(e.id ?? ''))
    await server.waitForConnections(1)
    server.send('event: connected\ndata: {}\n\n' + frame('5-0', 'progress', { taskId: 't' }))
    await flush()

    server.drop()
    await flush()
    expect(stream.state).toBe('waiting')
    timers.advance(1000)
    await server.waitForConnections(2)

    expect(server.connections[0]?.lastEventId).toBeNull()
    expect(server.connections[1]?.lastEventId).toBe('5-0')
    server.send(frame('6-0', 'completed', { taskId: 't' }))
    await flush()
    expect(seen).toEqual(['5-0', '6-0'])
    stream.stop()
  })

  it('treats silence past the heartbeat timeout as a dead connection', async () => {
    const server = new FakeServer()
    const timers = new ManualTimers()
    const stream = new UserStream({ transport: server.transport, timers, heartbeatTimeoutMs: 35_000 })
    stream.subscribe('t', () => {})
    await server.waitForConnections(1)

    timers.advance(20_000)
    server.send(': heartbeat\n\n') // a heartbeat re-arms the watchdog
    await flush()
    timers.advance(20_000)
    await flush()
    expect(server.connections[0]?.signal.aborted).toBe(false)

    timers.advance(16_000)
    await flush()
    expect(server.connections[0]?.signal.aborted).toBe(true)
    timers.advance(1000)
    await server.waitForConnections(2)
    stream.stop()
  })

  it('backs off 1, 2, 4 s … up to the cap while the server refuses, and starts over once connected', async () => {
    const server = new FakeServer()
    const timers = new ManualTimers()
    const stream = new UserStream({ transport: server.transport, timers, maxBackoffMs: 4000 })
    server.nextStatus = [503, 503, 503, 503]
    stream.subscribe('t', () => {})
    const delays: number[] = []
    for (let n = 1; n <= 4; n++) {
      await server.waitForConnections(n)
      await flush()
      delays.push(...timers.delays())
      timers.advance(timers.delays()[0] ?? 0)
    }
    expect(delays).toEqual([1000, 2000, 4000, 4000])

    await server.waitForConnections(5) // this one is accepted
    await flush()
    expect(stream.state).toBe('open')
    server.drop()
    await flush()
    expect(timers.delays()).toEqual([1000])
    stream.stop()
  })

  it('stops for good when the session has ended', async () => {
    const server = new FakeServer()
    const timers = new ManualTimers()
    let signedOut = 0
    const stream = new UserStream({ transport: server.transport, timers, onUnauthorized: () => signedOut++ })
    server.nextStatus = [401]
    stream.subscribe('t', () => {})
    await server.waitForConnections(1)
    await flush()

    expect(signedOut).toBe(1)
    expect(stream.state).toBe('closed')
    expect(timers.pending.size).toBe(0)
  })

  it('renews the session once when the server ended the stream with it, and resumes where it was', async () => {
    const server = new FakeServer()
    const timers = new ManualTimers()
    let refreshes = 0
    let signedOut = 0
    const stream = new UserStream({
      transport: server.transport,
      timers,
      refresh: async () => (refreshes++, true),
      onUnauthorized: () => signedOut++,
    })
    const seen: string[] = []
    stream.subscribe('t', (e) => seen.push(e.type))
    await server.waitForConnections(1)
    server.send(frame('1-0', 'progress', { taskId: 't' }) + 'event: session_ended\ndata: {"reason":"token has expired"}\n\n')
    server.drop()
    await flush()
    server.nextStatus = [401]
    timers.advance(1000)
    await server.waitForConnections(3)
    await flush()

    expect(refreshes).toBe(1)
    expect(signedOut).toBe(0)
    expect(server.connections.map((c) => c.lastEventId)).toEqual([null, '1-0', '1-0'])
    expect(stream.state).toBe('open')
    expect(seen).toEqual(['progress'])
    stream.stop()
  })

  it('ends the session when the refresh is refused, or when the renewed token is refused again', async () => {
    for (const [refreshAnswer, statuses] of [
      [false, [401]],
      [true, [401, 401]],
    ] as const) {
      const server = new FakeServer()
      let refreshes = 0
      let signedOut = 0
      const stream = new UserStream({
        transport: server.transport,
        timers: new ManualTimers(),
        refresh: async () => (refreshes++, refreshAnswer),
        onUnauthorized: () => signedOut++,
      })
      server.nextStatus = [...statuses]
      stream.subscribe('t', () => {})
      await server.waitForConnections(statuses.length)
      await flush()

      expect(refreshes).toBe(1)
      expect(signedOut).toBe(1)
      expect(stream.state).toBe('closed')
    }
  })

  it('tells every-task listeners about every event', async () => {
    const server = new FakeServer()
    const stream = new UserStream({ transport: server.transport, timers: new ManualTimers() })
    const types: string[] = []
    stream.onAny((e) => types.push(`${e.taskId}:${e.type}`))
    await server.waitForConnections(1)
    server.send(frame('1-0', 'step_started', { taskId: 'a' }) + frame('2-0', 'failed', { taskId: 'b' }))
    await flush()
    expect(types).toEqual(['a:step_started', 'b:failed'])
    stream.stop()
  })
})
