/**
 * One live connection per browser tab to `GET /api/stream` (all of the signed-in user's tasks), shared by
 * every component that follows a task: browsers allow six HTTP/1.1 connections per site, so one stream per
 * task would soon block the page's own requests.
 *
 * - Events are routed by `taskId` to whoever subscribed to that task (and to `onAny` listeners); the admin
 *   studio's `reply_*` events carry a `messageId` instead and are routed by it the same way.
 * - The connection is resumed after a drop with the last event id seen (`Last-Event-ID`), so nothing is
 *   missed and nothing is shown twice; a drop is noticed by a read error, by the server ending the response,
 *   or by silence longer than the heartbeat timeout (the server sends a comment every 15 s).
 * - Reconnects back off (1 s, 2 s, 4 s … at most 30 s, with jitter) and start over at 1 s once connected.
 * - The server ends the stream with the session (`session_ended`: token expired, signed out, disabled); the
 *   reconnect that follows is answered 401, the session is refreshed once and the stream resumes — or, when
 *   the refresh is refused too, the session is over (`onUnauthorized`).
 * - The network is injected (`StreamTransport`), so the logic is tested without a server.
 */

import { SseParser } from './sseParser'

export type StreamEventType =
  | 'connected'
  | 'step_started'
  | 'progress'
  | 'delayed'
  | 'step_completed'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'reply_started'
  | 'reply_delayed'
  | 'reply_delta'
  | 'reply_partial_image'
  | 'reply_completed'
  | 'reply_failed'
  | 'reply_cancelled'
  | 'session_ended'

export interface StreamEvent {
  id: string | null
  type: StreamEventType
  taskId: string | null
  /** A studio reply's message id (`reply_*` events); absent or null on task events. */
  messageId?: string | null
  data: Record<string, unknown>
}

export type StreamListener = (event: StreamEvent) => void
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'waiting' | 'closed'

export interface StreamResponse {
  status: number
  body: ReadableStream<Uint8Array> | null
}

/** Opens the HTTP request; `lastEventId` goes in the `Last-Event-ID` header when not null. */
export type StreamTransport = (url: string, lastEventId: string | null, signal: AbortSignal) => Promise<StreamResponse>

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
  random(): number
}

export interface UserStreamOptions {
  url?: string
  transport?: StreamTransport
  timers?: Timers
  heartbeatTimeoutMs?: number
  maxBackoffMs?: number
  /** Renews the session after a 401 (`POST /api/auth/refresh`); true when the stream may try again. */
  refresh?: () => Promise<boolean>
  /** Called when the server answers 401 and the session cannot be renewed (the app then signs out). */
  onUnauthorized?: () => void
}

// A task's end, and a studio reply's.
const TERMINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled', 'reply_completed', 'reply_failed', 'reply_cancelled'])

export const browserTransport: StreamTransport = async (url, lastEventId, signal) => {
  const headers: Record<string, string> = { Accept: 'text/event-stream' }
  if (lastEventId !== null) headers['Last-Event-ID'] = lastEventId
  const response = await fetch(url, { headers, signal, credentials: 'same-origin', cache: 'no-store' })
  return { status: response.status, body: response.body }
}

const browserTimers: Timers = {
  setTimeout: (callback, ms) => window.setTimeout(callback, ms),
  clearTimeout: (handle) => window.clearTimeout(handle as number),
  random: () => Math.random(),
}

export function isTerminal(type: string): boolean {
  return TERMINAL.has(type)
}

export class UserStream {
  private readonly url: string
  private readonly transport: StreamTransport
  private readonly timers: Timers
  private readonly heartbeatTimeoutMs: number
  private readonly maxBackoffMs: number
  private readonly onUnauthorized: (() => void) | undefined
  private readonly refresh: (() => Promise<boolean>) | undefined
  /** A refresh was just done for a 401: another 401 before the stream opens means the session is over. */
  private refreshed = false
  private readonly byTask = new Map<string, Set<StreamListener>>()
  private readonly anyListeners = new Set<StreamListener>()
  private readonly stateListeners = new Set<(state: ConnectionState) => void>()
  private lastEventId: string | null = null
  private abort: AbortController | null = null
  private watchdog: unknown = null
  private retryTimer: unknown = null
  private attempt = 0
  private running = false
  state: ConnectionState = 'idle'

  constructor(options: UserStreamOptions = {}) {
    this.url = options.url ?? '/api/stream'
    this.transport = options.transport ?? browserTransport
    this.timers = options.timers ?? browserTimers
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 35_000
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000
    this.onUnauthorized = options.onUnauthorized
    this.refresh = options.refresh
  }

  /** Follow one task (or one studio reply, by its message id); returns the function that stops following it. */
  subscribe(taskId: string, listener: StreamListener): () => void {
    let listeners = this.byTask.get(taskId)
    if (listeners === undefined) {
      listeners = new Set()
      this.byTask.set(taskId, listeners)
    }
    listeners.add(listener)
    this.start()
    return () => {
      listeners.delete(listener)
      if (listeners.size === 0) this.byTask.delete(taskId)
    }
  }

  /** Every event of every task (the header's credit badge, the creations list). */
  onAny(listener: StreamListener): () => void {
    this.anyListeners.add(listener)
    this.start()
    return () => this.anyListeners.delete(listener)
  }

  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener)
    return () => this.stateListeners.delete(listener)
  }

  start(): void {
    if (this.running) return
    this.running = true
    void this.connect()
  }

  /** Close for good (sign-out): no reconnect. */
  stop(): void {
    this.running = false
    this.clearTimers()
    this.abort?.abort()
    this.abort = null
    this.setState('closed')
  }

  private async connect(): Promise<void> {
    if (!this.running) return
    this.clearTimers()
    const abort = new AbortController()
    this.abort = abort
    this.setState('connecting')
    try {
      const response = await this.transport(this.url, this.lastEventId, abort.signal)
      if (response.status === 401) {
        const renewed = !this.refreshed && this.refresh !== undefined && (await this.refresh())
        if (renewed && this.running && abort === this.abort) {
          this.refreshed = true
          void this.connect()
          return
        }
        this.running = false
        this.setState('closed')
        this.onUnauthorized?.()
        return
      }
      if (response.status !== 200 || response.body === null) throw new Error(`stream answered ${response.status}`)
      this.refreshed = false
      this.attempt = 0
      this.setState('open')
      await this.read(response.body, abort)
    } catch {
      // A network error, an abort by the watchdog, or a refused answer: all end in a reconnect below.
    }
    if (abort === this.abort) this.scheduleReconnect()
  }

  private async read(body: ReadableStream<Uint8Array>, abort: AbortController): Promise<void> {
    const reader = body.getReader()
    const decoder = new TextDecoder()
    const parser = new SseParser()
    this.armWatchdog(abort)
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        this.armWatchdog(abort)
        const parsed = parser.feed(decoder.decode(value, { stream: true }))
        for (const message of parsed.messages) this.deliver(message.id, message.event, message.data)
      }
    } finally {
      reader.releaseLock()
    }
  }

  private deliver(id: string | null, type: string, raw: string): void {
    let data: Record<string, unknown>
    try {
      const parsed: unknown = JSON.parse(raw)
      data = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {}
    } catch {
      return // not ours to show
    }
    if (id !== null) this.lastEventId = id
    const taskId = typeof data.taskId === 'string' ? data.taskId : null
    const messageId = typeof data.messageId === 'string' ? data.messageId : null
    const event: StreamEvent = { id, type: type as StreamEventType, taskId, messageId, data }
    for (const listener of this.anyListeners) listener(event)
    const key = taskId ?? messageId
    if (key !== null) for (const listener of this.byTask.get(key) ?? []) listener(event)
  }

  private armWatchdog(abort: AbortController): void {
    if (this.watchdog !== null) this.timers.clearTimeout(this.watchdog)
    this.watchdog = this.timers.setTimeout(() => abort.abort(), this.heartbeatTimeoutMs)
  }

  private scheduleReconnect(): void {
    if (!this.running) return
    this.clearTimers()
    this.attempt += 1
    const base = Math.min(1000 * 2 ** (this.attempt - 1), this.maxBackoffMs)
    const delay = base / 2 + (this.timers.random() * base) / 2
    this.setState('waiting')
    this.retryTimer = this.timers.setTimeout(() => void this.connect(), delay)
  }

  private clearTimers(): void {
    if (this.watchdog !== null) this.timers.clearTimeout(this.watchdog)
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer)
    this.watchdog = null
    this.retryTimer = null
  }

  private setState(state: ConnectionState): void {
    this.state = state
    for (const listener of this.stateListeners) listener(state)
  }
}
