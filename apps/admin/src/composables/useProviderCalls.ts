/**
 * Provider diagnostics of a task: the HTTP calls its step jobs made to their providers (redacted by the
 * server: no key, no image, bodies capped). Fetched only once an admin opens a step's panel, and again
 * every few seconds while the task still runs.
 */

import { useQuery } from '@tanstack/vue-query'
import { computed, ref, type Ref } from 'vue'
import { api, unwrap, type components } from '@/api'

export type StepJobCalls = components['schemas']['StepJobCalls']
export type ProviderCall = components['schemas']['ProviderCallRecord']

/** The task's step jobs per step id, in the order the server gave them (oldest first). */
export function callsByStep(items: readonly StepJobCalls[]): Map<string, StepJobCalls[]> {
  const byStep = new Map<string, StepJobCalls[]>()
  for (const item of items) {
    const jobs = byStep.get(item.step_id) ?? []
    jobs.push(item)
    byStep.set(item.step_id, jobs)
  }
  return byStep
}

/** The colour of a call's status: 2xx fine, 3xx/4xx a warning (a refusal, a rate limit), else an error. */
export function statusKind(status: number | null | undefined): 'success' | 'warning' | 'error' {
  if (status == null) return 'error'
  if (status >= 200 && status < 300) return 'success'
  if (status < 500) return 'warning'
  return 'error'
}

/** A body as the panel shows it: JSON indented, a marker or text as it is, nothing as an empty string. */
export function formatBody(body: unknown): string {
  if (body === null || body === undefined) return ''
  if (typeof body === 'string') return body
  return JSON.stringify(body, null, 2)
}

export function useProviderCalls(taskId: Ref<string>, running: Ref<boolean>) {
  const opened = ref(false)
  const query = useQuery({
    queryKey: ['admin-task-provider-calls', taskId],
    queryFn: () =>
      unwrap(api.GET('/api/admin/tasks/{task_id}/provider-calls', { params: { path: { task_id: taskId.value } } })),
    enabled: opened,
    refetchInterval: () => (running.value ? 3000 : false),
  })
  const byStep = computed(() => callsByStep(query.data.value?.items ?? []))
  return { opened, query, byStep }
}

/** How long a call took, short: `240 ms`, `3.2 s`. */
export function durationText(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
}
