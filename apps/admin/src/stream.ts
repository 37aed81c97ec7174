/**
 * The admin app's one live connection per tab: the web app's stream client (`GET /api/stream`, resumed
 * after a drop, routed by task or studio message id), created on first use. Only the studio follows
 * replies, so it is closed when the studio is left (and with it at sign-out); a 401 on it that a refresh
 * cannot cure means the session is over.
 */

import { refreshSession } from '@shared/api/client'
import { UserStream } from '@shared/stream/userStream'
import { useSessionStore } from './stores/session'

let stream: UserStream | null = null

export function adminStream(): UserStream {
  stream ??= new UserStream({ refresh: refreshSession, onUnauthorized: () => useSessionStore().forget() })
  return stream
}

export function closeAdminStream(): void {
  stream?.stop()
  stream = null
}
