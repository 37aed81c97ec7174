import { QueryClient, VueQueryPlugin } from '@tanstack/vue-query'
import { mount } from '@vue/test-utils'
import type { Middleware } from 'openapi-fetch'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { defineComponent, h } from 'vue'
import { api } from '@/api/client'
import { ProblemError } from '@/api/problem'
import { type DeviceSession, SESSIONS_PAGE_SIZE, useSessions } from './useAccount'

/**
 * Stands in for the gateway behind the app's own API client (a middleware that answers before anything is
 * sent): `GET /api/auth/sessions` pages my sessions newest first, `limit` at a time after the `cursor` it
 * gave; `DELETE /api/auth/sessions/{id}` signs one out (404 for one it does not know).
 */
class FakeGateway {
  listed: URLSearchParams[] = []
  sessions: DeviceSession[]

  constructor(count: number) {
    this.sessions = Array.from({ length: count }, (_, index) => aSession(index))
  }

  readonly middleware: Middleware = {
    onRequest: ({ request }) => {
      const url = new URL(request.url)
      if (request.method === 'GET' && url.pathname === '/api/auth/sessions') return this.page(url.searchParams)
      const revoked = /^\/api\/auth\/sessions\/([^/]+)$/.exec(url.pathname)
      if (request.method === 'DELETE' && revoked) return this.revoke(revoked[1] ?? '')
      return json({ title: 'Not Found', status: 404, code: 'not_found' }, 404)
    },
  }

  private page(query: URLSearchParams): Response {
    this.listed.push(query)
    const limit = Number(query.get('limit') ?? '20')
    const cursor = query.get('cursor')
    const start = cursor === null ? 0 : this.sessions.findIndex((session) => cursor === `after:${session.id}`) + 1
    const items = this.sessions.slice(start, start + limit)
    const more = this.sessions.length > start + limit
    return json({ items, next_cursor: more ? `after:${items.at(-1)?.id}` : null })
  }

  private revoke(id: string): Response {
    if (!this.sessions.some((session) => session.id === id)) {
      return json({ title: 'Not Found', status: 404, code: 'user_not_found', detail: 'no such session' }, 404)
    }
    this.sessions = this.sessions.filter((session) => session.id !== id)
    return new Response(null, { status: 204 })
  }
}

/** The nth newest session: one minute older than the one before it. */
function aSession(n: number): DeviceSession {
  const signedIn = new Date(Date.UTC(2026, 0, 1, 12, 0) - n * 60_000).toISOString()
  return {
    id: `session-${String(n).padStart(2, '0')}`,
    created_at: signedIn,
    last_refreshed_at: signedIn,
    expires_at: '2026-02-01T12:00:00Z',
    user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0',
    current: n === 0,
  }
}

function json(body: unknown, status = 200): Response {
  const type = status >= 400 ? 'application/problem+json' : 'application/json'
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': type } })
}

/** `useSessions` in a component of its own, with a query client that does not retry. */
function mountSessions(): ReturnType<typeof useSessions> {
  let sessions: ReturnType<typeof useSessions> | undefined
  const Host = defineComponent({
    setup() {
      sessions = useSessions()
      return () => h('div')
    },
  })
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } })
  mount(Host, { global: { plugins: [[VueQueryPlugin, { queryClient }]] } })
  if (!sessions) throw new Error('the host component did not set up')
  return sessions
}

const ids = (sessions: DeviceSession[]) => sessions.map((session) => session.id)

describe('useSessions', () => {
  let gateway: FakeGateway

  beforeEach(() => {
    gateway = new FakeGateway(SESSIONS_PAGE_SIZE + 2)
    api.use(gateway.middleware)
  })

  afterEach(() => {
    api.eject(gateway.middleware)
  })

  it('lists my devices a page at a time, asking for the next after the cursor the last page gave', async () => {
    const { sessions, items } = mountSessions()
    await sessions.suspense()

    expect(ids(items.value)).toEqual(ids(gateway.sessions.slice(0, SESSIONS_PAGE_SIZE)))
    expect(sessions.hasNextPage.value).toBe(true)
    expect(Object.fromEntries(gateway.listed[0] ?? [])).toEqual({ limit: String(SESSIONS_PAGE_SIZE) })

    await sessions.fetchNextPage()

    expect(ids(items.value)).toEqual(ids(gateway.sessions))
    expect(sessions.hasNextPage.value).toBe(false)
    expect(gateway.listed[1]?.get('cursor')).toBe(`after:session-${String(SESSIONS_PAGE_SIZE - 1).padStart(2, '0')}`)
  })

  it('revoking a device fetches the pages again, so the ones after it move up without a gap or a repeat', async () => {
    const { sessions, items, revoke } = mountSessions()
    await sessions.suspense()
    await sessions.fetchNextPage()

    await revoke('session-03')

    // Both pages again: the first still full, the second holding the one that is left.
    expect(ids(items.value)).toEqual(ids(gateway.sessions))
    expect(ids(items.value)).not.toContain('session-03')
    expect(sessions.data.value?.pages.map((page) => page.items.length)).toEqual([SESSIONS_PAGE_SIZE, 1])
    expect(sessions.hasNextPage.value).toBe(false)
  })

  it('a revoke that fails is thrown for the page to show, and the list is fetched again all the same', async () => {
    const { sessions, items, revoke } = mountSessions()
    await sessions.suspense()
    const before = gateway.listed.length
    gateway.sessions = gateway.sessions.filter((session) => session.id !== 'session-01')  // gone elsewhere

    const failure = await revoke('session-01').catch((error: unknown) => error)

    expect(failure).toBeInstanceOf(ProblemError)
    expect((failure as ProblemError).problem).toMatchObject({ status: 404, code: 'user_not_found' })
    expect(gateway.listed.length).toBeGreaterThan(before)
    expect(ids(items.value)).not.toContain('session-01')
  })
})
