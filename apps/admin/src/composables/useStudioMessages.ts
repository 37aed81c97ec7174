/**
 * An open chat's messages: the newest page first, older pages on request ("load older", by the cursor),
 * shown oldest → newest as turns (a prompt and its replies). `refresh` rereads every loaded page (after a
 * reply ended or a prompt was sent, the stored state is the truth); `cancel` stops a running reply.
 */

import { useInfiniteQuery, useQueryClient } from '@tanstack/vue-query'
import { computed, type Ref } from 'vue'
import { api, type Problem, ProblemError, unwrap } from '@/api'
import { oldestFirst, turns } from '@/studio/conversation'

export const MESSAGES_PER_PAGE = 30

export function useStudioMessages(chatId: Ref<string | null>) {
  const queries = useQueryClient()
  const messages = useInfiniteQuery({
    queryKey: ['studio', 'messages', chatId],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/admin/studio/chats/{chat_id}/messages', {
          params: { path: { chat_id: chatId.value ?? '' }, query: { limit: MESSAGES_PER_PAGE, cursor: pageParam } },
        }),
      ),
    getNextPageParam: (page) => page.next_cursor ?? null,
    enabled: computed(() => chatId.value !== null),
  })
  const list = computed(() => oldestFirst(messages.data.value?.pages ?? []))
  const conversation = computed(() => turns(list.value))

  async function refresh(): Promise<void> {
    if (chatId.value === null) return
    await queries.invalidateQueries({ queryKey: ['studio', 'messages', chatId.value] })
  }

  /** Asks the API to stop a reply; the API's refusal, or null (the stream then says it was cancelled). */
  async function cancel(messageId: string): Promise<Problem | null> {
    try {
      await unwrap(api.POST('/api/admin/studio/messages/{message_id}/cancel', { params: { path: { message_id: messageId } } }))
      return null
    } catch (error) {
      return error instanceof ProblemError ? error.problem : null
    } finally {
      await refresh()
    }
  }

  return { messages, list, conversation, refresh, cancel }
}
