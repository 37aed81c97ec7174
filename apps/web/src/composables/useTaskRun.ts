/**
 * One tool run on a page: start it (with an Idempotency-Key, so a double click or a retried request makes
 * one task), follow it live on the tab's stream, cancel it, and pick it up again after a reload
 * (`?taskId=` in the URL). The state itself is folded by `tools/runState.ts`.
 */

import { onScopeDispose, ref, shallowRef } from 'vue'
import { useRoute, useRouter } from 'vue-router'
import { api } from '@/api/client'
import { type Problem, ProblemError, unwrap } from '@/api/problem'
import type { components } from '@/api/schema'
import { useSessionStore } from '@/stores/session'
import { userStream } from '@/stream'
import { fromTask, IDLE, isActive, onEvent, type RunState } from '@/tools/runState'

export type Task = components['schemas']['Task']
export type TaskRequest = components['schemas']['CreateTask']

export function useTaskRun() {
  const route = useRoute()
  const router = useRouter()
  const session = useSessionStore()
  const state = ref<RunState>({ ...IDLE })
  const task = shallowRef<Task | null>(null)
  const problem = ref<Problem | null>(null)
  let unsubscribe: (() => void) | null = null

  function follow(taskId: string): void {
    unsubscribe?.()
    unsubscribe = userStream().subscribe(taskId, (event) => {
      const before = state.value.status
      state.value = onEvent(state.value, event)
      if (isActive(before) && !isActive(state.value.status)) void finish(taskId)
    })
  }

  /** The end: the task's own record has the outputs and what was charged; the balance changed. */
  async function finish(taskId: string): Promise<void> {
    unsubscribe?.()
    unsubscribe = null
    await load(taskId)
    void session.refreshBalance()
  }

  async function load(taskId: string): Promise<Task | null> {
    try {
      const found = await unwrap(api.GET('/api/tasks/{task_id}', { params: { path: { task_id: taskId } } }))
      task.value = found
      state.value = { ...fromTask(found), progress: isActive(found.status) ? state.value.progress : 100 }
      return found
    } catch (error) {
      problem.value = error instanceof ProblemError ? error.problem : null
      return null
    }
  }

  async function start(request: TaskRequest): Promise<void> {
    problem.value = null
    task.value = null
    state.value = { ...IDLE, status: 'starting' }
    void session.refreshBalance()
    try {
      const created = await unwrap(
        api.POST('/api/tasks', { body: request, headers: { 'Idempotency-Key': crypto.randomUUID() } }),
      )
      task.value = created
      state.value = fromTask(created)
      follow(created.id)
      await router.replace({ query: { ...route.query, taskId: created.id } })
      // Events may have gone by between the answer and the subscription: the record says where it is.
      const current = await load(created.id)
      if (current && !isActive(current.status)) await finish(created.id)
      else void session.refreshBalance()
    } catch (error) {
      state.value = { ...IDLE }
      problem.value = error instanceof ProblemError ? error.problem : null
      if (!(error instanceof ProblemError)) throw error
    }
  }

  /** After a reload or from a link: show the task as it is and follow it if it still runs. */
  async function restore(taskId: string): Promise<boolean> {
    const found = await load(taskId)
    if (found === null) return false
    if (isActive(found.status)) {
      follow(taskId)
      await load(taskId) // whatever happened while subscribing
    }
    return true
  }

  async function cancel(): Promise<void> {
    if (!state.value.taskId) return
    try {
      await unwrap(api.POST('/api/tasks/{task_id}/cancel', { params: { path: { task_id: state.value.taskId } } }))
    } catch (error) {
      problem.value = error instanceof ProblemError ? error.problem : null
    }
    await finish(state.value.taskId)
  }

  function reset(): void {
    unsubscribe?.()
    unsubscribe = null
    state.value = { ...IDLE }
    task.value = null
    problem.value = null
    const { taskId: _, ...rest } = route.query
    void router.replace({ query: rest })
  }

  onScopeDispose(() => unsubscribe?.())

  return { state, task, problem, start, restore, cancel, reset }
}
