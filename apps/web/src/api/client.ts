/**
 * The one way the app talks to the platform: `openapi-fetch` typed by the gateway's own OpenAPI document
 * (`schema.d.ts`, generated — never edited by hand). Same origin, session in HttpOnly cookies; the app never
 * sees a token. Two things every call needs are done here, once:
 * - state-changing requests echo the `fm_csrf` cookie in `X-CSRF-Token` (the gateway's double submit);
 * - an expired access token is refreshed once (`POST /api/auth/refresh`, which rotates the cookies) and the
 *   request retried; if that fails too the session is over and `onSessionEnded` tells the app.
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

/** One refresh at a time, however many requests found the token expired together. */
export function refreshSession(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const headers: Record<string, string> = {}
      const token = csrfToken()
      if (token) headers['X-CSRF-Token'] = token
      const response = await fetch('/api/auth/refresh', { method: 'POST', headers, credentials: 'same-origin' })
      return response.ok
    } catch {
      return false
    } finally {
      queueMicrotask(() => (refreshing = null))
    }
  })()
  return refreshing
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

const renewal: Middleware = {
  async onResponse({ request, response }) {
    if (response.status !== 401 || new URL(request.url).pathname.startsWith('/api/auth/')) return response
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
