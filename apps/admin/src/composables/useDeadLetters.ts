/**
 * One dead-letter topic's messages (keyset pages, newest first) and the replay of chosen ones. A replay is
 * idempotent on the server (by event id), so a retried or doubled click re-publishes nothing twice; the
 * outcome of each message is kept to show beside it.
 */
import { useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/vue-query'
import { computed, ref, type Ref } from 'vue'
import { api, unwrap, type components } from '@/api'

type Outcome = components['schemas']['ReplayOutcome']

type Position = { partition: number; offset: number }

export function positionKey(position: Position): string {
  return `${position.partition}:${position.offset}`
}

export function positionOf(key: string): Position {
  const [partition = 0, offset = 0] = key.split(':').map(Number)
  return { partition, offset }
}

export function useDeadLetters(topic: Ref<string>) {
  const client = useQueryClient()
  const messages = useInfiniteQuery({
    queryKey: ['dead-letters', topic],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/admin/queue/dead-letters/{topic}/messages', {
          params: { path: { topic: topic.value }, query: { limit: 20, cursor: pageParam } },
        }),
      ),
    getNextPageParam: (page) => page.next_cursor ?? null,
  })
  const rows = computed(() => messages.data.value?.pages.flatMap((page) => page.items) ?? [])

  const selected = ref(new Set<string>())
  const outcomes = ref(new Map<string, Outcome>())
  function toggle(key: string, on: boolean): void {
    const next = new Set(selected.value)
    if (on) next.add(key)
    else next.delete(key)
    selected.value = next
  }

  const replay = useMutation({
    mutationFn: (reason: string) =>
      unwrap(
        api.POST('/api/admin/queue/dead-letters/{topic}/replay', {
          params: { path: { topic: topic.value } },
          body: {
            messages: [...selected.value].map(positionOf),
            reason: reason.trim() || null,
          },
        }),
      ),
    onSuccess: (result) => {
      const next = new Map(outcomes.value)
      for (const item of result.items) next.set(positionKey(item), item)
      outcomes.value = next
      selected.value = new Set()
      void client.invalidateQueries({ queryKey: ['dead-letters', topic] })
      void client.invalidateQueries({ queryKey: ['queue'] })
    },
  })

  return { messages, rows, selected, toggle, outcomes, replay }
}
