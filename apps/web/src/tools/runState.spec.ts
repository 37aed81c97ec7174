import { describe, expect, it } from 'vitest'
import type { StreamEvent } from '@/stream/userStream'
import { fromTask, onEvent, overallProgress, type RunState } from './runState'

function event(type: StreamEvent['type'], data: Record<string, unknown>, taskId = 't1'): StreamEvent {
  return { id: null, type, taskId, data: { taskId, ...data } }
}

const pending = fromTask({ id: 't1', status: 'pending', step_ids: ['a', 'b'], completed_step_ids: [] })

function play(state: RunState, ...events: StreamEvent[]): RunState {
  return events.reduce(onEvent, state)
}

describe('a run folded from its events', () => {
  it('moves through steps to completion with the charged credits', () => {
    const state = play(
      pending,
      event('step_started', { stepId: 'a' }),
      event('progress', { stepId: 'a', progress: 40, message: 'Drawing' }),
      event('step_completed', { stepId: 'a' }),
      event('step_started', { stepId: 'b' }),
      event('progress', { stepId: 'b', progress: 50, message: 'Sculpting' }),
    )
    expect(state).toMatchObject({ status: 'running', currentStepId: 'b', completedStepIds: ['a'], progress: 50, message: 'Sculpting' })
    expect(overallProgress(state)).toBe(75)

    const done = play(state, event('step_completed', { stepId: 'b' }), event('completed', { chargedCredits: 50 }))
    expect(done).toMatchObject({ status: 'completed', charged: 50 })
    expect(overallProgress(done)).toBe(100)
  })

  it('never moves progress backwards and ignores other tasks and anything after the end', () => {
    let state = play(pending, event('step_started', { stepId: 'a' }), event('progress', { progress: 60 }), event('progress', { progress: 30 }))
    expect(state.progress).toBe(60)
    state = onEvent(state, event('progress', { progress: 90 }, 'other-task'))
    expect(state.progress).toBe(60)
    const failed = onEvent(state, event('failed', { error: 'the provider refused', code: 'provider_rejected', chargedCredits: 0 }))
    expect(failed).toMatchObject({ status: 'failed', errorMessage: 'the provider refused', errorCode: 'provider_rejected', charged: 0 })
    expect(onEvent(failed, event('completed', {}))).toBe(failed)
  })

  it('shows a delay until the step moves again', () => {
    const state = play(pending, event('step_started', { stepId: 'a' }), event('delayed', { reason: 'rate_limited' }))
    expect(state.delayed).toBe(true)
    expect(onEvent(state, event('progress', { progress: 10 })).delayed).toBe(false)
  })

  it('starts from what the task says after a reload', () => {
    const state = fromTask({ id: 't1', status: 'failed', step_ids: ['a'], completed_step_ids: [], charged_credits: 0, error: { code: 'step_timeout', message: 'too slow' } })
    expect(state).toMatchObject({ status: 'failed', errorCode: 'step_timeout', errorMessage: 'too slow', charged: 0 })
  })
})
