/** The tab's one task stream, created on first use; a 401 on it that a refresh cannot cure ends the session. */

import { refreshSession } from '@/api/client'
import { useSessionStore } from '@/stores/session'
import { UserStream } from './userStream'

let stream: UserStream | null = null

export function userStream(): UserStream {
  stream ??= new UserStream({ refresh: refreshSession, onUnauthorized: () => useSessionStore().forget() })
  return stream
}

export function closeUserStream(): void {
  stream?.stop()
  stream = null
}
