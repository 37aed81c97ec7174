/**
 * The studio's left panel: the admin's projects (names that group chats, with their counts), the chats of
 * the project chosen (most recently active first, a page at a time; archived ones on request), and what an
 * admin does to a chat — start, rename, move, re-prompt, archive, delete. Each change refreshes the list and
 * the project counts.
 */

import { useInfiniteQuery, useQuery, useQueryClient } from '@tanstack/vue-query'
import { computed, type Ref } from 'vue'
import { api, type Problem, toProblem, unwrap } from '@/api'
import { useCreationKey } from '@/composables/useCreationKey'
import { useSubmission } from '@/composables/useSubmission'
import { type Chat, type ChatForm, chatCreate, chatQuery, chatUpdate, type ChatUpdate, type ProjectFilter } from '@/studio/chats'

export function useStudioProjects() {
  return useQuery({
    queryKey: ['studio', 'projects'],
    queryFn: () => unwrap(api.GET('/api/admin/studio/projects')),
  })
}

export function useStudioChats(filter: Ref<ProjectFilter>, archived: Ref<boolean>, everyone: Ref<boolean>) {
  const chats = useInfiniteQuery({
    queryKey: ['studio', 'chats', filter, archived, everyone],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/admin/studio/chats', {
          params: { query: { ...chatQuery(filter.value, archived.value, everyone.value), limit: 30, cursor: pageParam } },
        }),
      ),
    getNextPageParam: (page) => page.next_cursor ?? null,
  })
  const rows = computed(() => chats.data.value?.pages.flatMap((page) => page.items) ?? [])
  return { chats, rows }
}

/** One chat by id (the one open, which may not be in the list shown: another project, archived). */
export function useStudioChat(chatId: Ref<string | null>) {
  return useQuery({
    queryKey: ['studio', 'chat', chatId],
    queryFn: () => unwrap(api.GET('/api/admin/studio/chats/{chat_id}', { params: { path: { chat_id: chatId.value ?? '' } } })),
    enabled: computed(() => chatId.value !== null),
  })
}

export function useChatActions() {
  const queries = useQueryClient()
  const { saving, errors, problem, clear, submit } = useSubmission()
  const creation = useCreationKey()

  async function refresh(): Promise<void> {
    await Promise.all(['chats', 'chat', 'projects'].map((part) => queries.invalidateQueries({ queryKey: ['studio', part] })))
  }

  /** Starts a chat; the chat, or null with `errors`/`problem` saying why not. */
  async function create(form: ChatForm): Promise<Chat | null> {
    const body = chatCreate(form)
    const chat = await submit(() => api.POST('/api/admin/studio/chats', { body, headers: { 'Idempotency-Key': creation.keyFor(body) } }))
    if (!chat) return null
    creation.succeeded()
    await refresh()
    return chat
  }

  /** Changes a chat (archive, restore: just that); nothing to change is not sent. */
  async function update(chat: Chat, body: ChatUpdate): Promise<Chat | null> {
    if (Object.keys(body).length === 0) return chat
    const saved = await submit(() => api.PATCH('/api/admin/studio/chats/{chat_id}', { params: { path: { chat_id: chat.id } }, body }))
    if (saved) await refresh()
    return saved
  }

  /** Saves the chat form's changes (rename, move, model, system prompt). */
  function edit(chat: Chat, form: ChatForm): Promise<Chat | null> {
    return update(chat, chatUpdate(chat, form))
  }

  /** Deletes a chat (its messages and images too): null when gone, else the refusal. */
  async function remove(chat: Chat): Promise<Problem | null> {
    try {
      const result = await api.DELETE('/api/admin/studio/chats/{chat_id}', { params: { path: { chat_id: chat.id } } })
      if (!result.response.ok) return toProblem(result.error, result.response.status)
      queries.removeQueries({ queryKey: ['studio', 'messages', chat.id] })
      await refresh()
      return null
    } catch {
      return toProblem(null, 0)
    }
  }

  return { saving, errors, problem, clear, create, update, edit, remove }
}
