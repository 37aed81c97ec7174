/**
 * The state of one tool run as the page shows it, folded from the task (REST) and its live events
 * (stream). Pure: `fromTask` and `onEvent` return new states, so the page logic is tested without a
 * server. Events are applied in stream order; anything after the end is ignored.
 */

import type { StreamEvent } from '@/stream/userStream'

export type RunStatus = 'idle' | 'starting' | 'pending' | 'running' | 'completed' | 'failed' | 'cancelled'

export interface RunState {
  taskId: string | null
  status: RunStatus
  stepIds: string[]
  currentStepId: string | null
  completedStepIds: string[]
  /** 0–100 within the current step. */
  progress: number
  message: string
  delayed: boolean
  errorMessage: string | null
  errorCode: string | null
  charged: number | null
}

export const IDLE: RunState = {
  taskId: null,
  status: 'idle',
  stepIds: [],
  currentStepId: null,
  completedStepIds: [],
  progress: 0,
  message: '',
  delayed: false,
  errorMessage: null,
  errorCode: null,
  charged: null,
}

export interface TaskLike {
  id: string
  status: 'pending' | 'running' | 'completed' | 'failed' | 'cancelled'
  step_ids: string[]
  current_step_id?: string | null
  completed_step_ids: string[]
  charged_credits?: number | null
  error?: { code: string; message?: string | null } | null
}

export function isActive(status: RunStatus): boolean {
  return status === 'starting' || status === 'pending' || status === 'running'
}

export function fromTask(task: TaskLike): RunState {
  return {
    ...IDLE,
    taskId: task.id,
    status: task.status,
    stepIds: task.step_ids,
    currentStepId: task.current_step_id ?? null,
    completedStepIds: task.completed_step_ids,
    progress: task.status === 'completed' ? 100 : 0,
    charged: task.charged_credits ?? null,
    errorMessage: task.error?.message ?? null,
    errorCode: task.error?.code ?? null,
  }
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null
}

export function onEvent(state: RunState, event: StreamEvent): RunState {
  if (event.taskId !== state.taskId || !isActive(state.status)) return state
  const data = event.data
  switch (event.type) {
    case 'step_started':
      return { ...state, status: 'running', currentStepId: text(data.stepId), progress: 0, message: '', delayed: false }
    case 'progress': {
      const progress = typeof data.progress === 'number' ? data.progress : state.progress
      return { ...state, status: 'running', progress: Math.max(state.progress, progress), message: text(data.message) ?? state.message, delayed: false }
    }
    case 'delayed':
      return { ...state, delayed: true }
    case 'step_completed': {
      const stepId = text(data.stepId)
      const done = stepId && !state.completedStepIds.includes(stepId) ? [...state.completedStepIds, stepId] : state.completedStepIds
      return { ...state, completedStepIds: done, progress: 100, delayed: false }
    }
    case 'completed':
      return { ...state, status: 'completed', progress: 100, charged: typeof data.chargedCredits === 'number' ? data.chargedCredits : state.charged }
    case 'failed':
      return {
        ...state,
        status: 'failed',
        errorMessage: text(data.error),
        errorCode: text(data.code),
        charged: typeof data.chargedCredits === 'number' ? data.chargedCredits : state.charged,
      }
    case 'cancelled':
      return { ...state, status: 'cancelled', charged: typeof data.chargedCredits === 'number' ? data.chargedCredits : state.charged }
    default:
      return state
  }
}

/** The whole run's progress, 0–100, across its steps. */
export function overallProgress(state: RunState): number {
  if (state.status === 'completed') return 100
  const total = Math.max(state.stepIds.length, 1)
  const running = state.currentStepId && !state.completedStepIds.includes(state.currentStepId) ? state.progress / 100 : 0
  return Math.min(99, Math.round(((state.completedStepIds.length + running) / total) * 100))
}
