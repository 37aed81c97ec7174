/**
 * The studio's live replies: each running reply is followed on the tab's stream by its message id, its
 * events folded into its live state (text so far, the newest partial image, delayed or not, how it ended).
 * When a reply ends, `onEnd` is told (the page then refetches the stored messages) and the reply is no
 * longer followed; its last live state stays until `forget` (another chat) or the page is left.
 */

import { onScopeDispose, ref, shallowRef } from 'vue'
import { adminStream, closeAdminStream } from '@/stream'
import { isActive, type LiveReply, onReplyEvent, WAITING } from '@/studio/conversation'
import type { ConnectionState, UserStream } from '@shared/stream/userStream'

/** `stream` and `close` are the tab's stream and how it is closed; a test passes its own. */
export function useStudioStream(onEnd: (messageId: string) => void, stream: UserStream = adminStream(), close: () => void = closeAdminStream) {
  const live = shallowRef<Readonly<Record<string, LiveReply>>>({})
  const connection = ref<ConnectionState>(stream.state)
  const following = new Map<string, () => void>()
  const stopWatchingState = stream.onState((state) => (connection.value = state))

  function set(messageId: string, state: LiveReply): void {
    live.value = { ...live.value, [messageId]: state }
  }

  function unfollow(messageId: string): void {
    following.get(messageId)?.()
    following.delete(messageId)
  }

  /** Follows a reply (once, however often asked) until it ends. */
  function follow(messageId: string): void {
    if (following.has(messageId)) return
    if (live.value[messageId] === undefined) set(messageId, { ...WAITING })
    const stop = stream.subscribe(messageId, (event) => {
      const before = live.value[messageId] ?? WAITING
      const after = onReplyEvent(before, event)
      if (after === before) return
      set(messageId, after)
      if (isActive(before.status) && !isActive(after.status)) {
        unfollow(messageId)
        onEnd(messageId)
      }
    })
    following.set(messageId, stop)
  }

  /** Stops following every reply and drops their live states (another chat is opened). */
  function forget(): void {
    for (const stop of following.values()) stop()
    following.clear()
    live.value = {}
  }

  // Connected before the first prompt is sent, so a quick reply's first events are not missed.
  stream.start()
  onScopeDispose(() => {
    forget()
    stopWatchingState()
    close()
  })

  return { live, connection, follow, forget }
}
