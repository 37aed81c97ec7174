/** The tab's one task stream, created on first use; a 401 on it means the session is over. */

import { useSessionStore } from '@/stores/session'
import { UserStream } from './userStream'

let stream: UserStream | null = null

export function userStream(): UserStream {
  stream ??= new UserStream({ onUnauthorized: () => useSessionStore().forget() })
  return stream
}

export function closeUserStream(): void {
  stream?.stop()
  stream = null
}
