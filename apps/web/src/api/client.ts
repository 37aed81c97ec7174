/**
 * The one way the app talks to the platform: `openapi-fetch` typed by the gateway's own OpenAPI document
 * (`schema.d.ts`, generated — never edited by hand). Same origin, session in HttpOnly cookies; the app never
 * sees a token. Two things every call needs are done here, once:
 * - state-changing requests echo the `fm_csrf` cookie in `X-CSRF-Token` (the gateway's double submit);
 * - an expired access token is refreshed once (`POST /api/auth/refresh`, which rotates the cookies) and the
 *   request retried; if that fails too the session is over and `onSessionEnded` tells the app. A refresh that
 *   another tab's refresh superseded waits for that tab's cookies instead (`refreshSession`).
 */

import createClient, { type Middleware } from 'openapi-fetch'
import type { paths } from './schema'

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export function csrfToken(cookies: string = document.cookie): string | null {
  for (const part of cookies.split(';')) {
    const [name, ...value] = part.trim().split('=')
    if (name === 'fm_csrf') return decodeURIComponent(value.join('='))
  }
  return null
}

let sessionEnded: () => void = () => {}

/** What to do when the session cannot be renewed (the session store signs out and shows sign-in). */
export function onSessionEnded(handler: () => void): void {
  sessionEnded = handler
}

let refreshing: Promise<boolean> | null = null

/** How long a tab waits for another tab's renewed cookies after its own refresh was superseded. */
const SUPERSEDED_WAIT_MS = 3000
const COOKIE_LOOK_EVERY_MS = 50

/**
 * One refresh at a time, however many requests found the token expired together. Tabs share the cookies but
 * not this promise: when another tab renewed the session with the same refresh cookie an instant before, the
 * answer is 409 `refresh_superseded` and the session lives on in the cookies that tab's answer brings. They
 * may still be on their way, so the session counts as renewed once the CSRF cookie (rotated with them)
 * changes; if it does not within a few seconds, the session is over.
 */
export function refreshSession(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const headers: Record<string, string> = {}
      const token = csrfToken()
      if (token) headers['X-CSRF-Token'] = token
      const response = await fetch('/api/auth/refresh', { method: 'POST', headers, credentials: 'same-origin' })
      if (response.ok) return true
      return (await supersededByAnotherTab(response)) && (await cookieChanges(token, SUPERSEDED_WAIT_MS))
    } catch {
      return false
    } finally {
      queueMicrotask(() => (refreshing = null))
    }
  })()
  return refreshing
}

async function supersededByAnotherTab(response: Response): Promise<boolean> {
  if (response.status !== 409) return false
  const body: unknown = await response.json().catch(() => null)
  return typeof body === 'object' && body !== null && (body as { code?: unknown }).code === 'refresh_superseded'
}

/** True once the CSRF cookie is no longer `before`; false when `waitMs` passed first. */
export async function cookieChanges(before: string | null, waitMs: number, cookies: () => string = () => document.cookie): Promise<boolean> {
  const until = Date.now() + waitMs
  while (csrfToken(cookies()) === before) {
    if (Date.now() >= until) return false
    await new Promise((resolve) => setTimeout(resolve, COOKIE_LOOK_EVERY_MS))
  }
  return true
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (UNSAFE.has(request.method)) {
      const token = csrfToken()
      if (token) request.headers.set('X-CSRF-Token', token)
    }
    return request
  },
}

/** The auth routes that take no session: a 401 from them is their answer (a wrong password), not an expired token. */
const SESSIONLESS_AUTH_PATHS = new Set(['/api/auth/refresh', '/api/auth/sign-out', '/api/auth/verify-email', '/api/auth/forgot-password', '/api/auth/reset-password'])
const SESSIONLESS_AUTH_PREFIXES = ['/api/auth/sign-up/', '/api/auth/sign-in/', '/api/auth/oauth/']

/** Whether a 401 from this path means the access token expired (renew and retry) — `/api/auth/me` included. */
export function renewable(pathname: string): boolean {
  return !SESSIONLESS_AUTH_PATHS.has(pathname) && !SESSIONLESS_AUTH_PREFIXES.some((prefix) => pathname.startsWith(prefix))
}

const renewal: Middleware = {
  async onResponse({ request, response }) {
    if (response.status !== 401 || !renewable(new URL(request.url).pathname)) return response
    const retry = request.clone()
    if (!(await refreshSession())) {
      sessionEnded()
      return response
    }
    const token = csrfToken()
    if (token && UNSAFE.has(retry.method)) retry.headers.set('X-CSRF-Token', token)
    return fetch(retry)
  },
}

export const api = createClient<paths>({ baseUrl: window.location.origin, credentials: 'same-origin' })
api.use(csrf, renewal)
