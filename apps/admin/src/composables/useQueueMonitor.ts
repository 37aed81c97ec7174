/**
 * The queue monitor's live data: each part polled on its own (a slow Kafka read must not hold back the
 * limiter's numbers), every few seconds while the page is open, paused by TanStack Query when the tab is
 * hidden.
 */
import { useQuery } from '@tanstack/vue-query'
import { api, unwrap } from '@/api'

export const QUEUE_REFRESH_MS = 3_000

export function useQueueMonitor() {
  const lag = useQuery({
    queryKey: ['queue', 'lag'],
    queryFn: () => unwrap(api.GET('/api/admin/queue/lag')),
    refetchInterval: QUEUE_REFRESH_MS,
  })
  const deadLetters = useQuery({
    queryKey: ['queue', 'dead-letters'],
    queryFn: () => unwrap(api.GET('/api/admin/queue/dead-letters')),
    refetchInterval: QUEUE_REFRESH_MS,
  })
  const stepJobs = useQuery({
    queryKey: ['queue', 'step-jobs'],
    queryFn: () => unwrap(api.GET('/api/admin/queue/step-jobs')),
    refetchInterval: QUEUE_REFRESH_MS,
  })
  const limiter = useQuery({
    queryKey: ['queue', 'limiter'],
    queryFn: () => unwrap(api.GET('/api/admin/queue/limiter')),
    refetchInterval: QUEUE_REFRESH_MS,
  })
  const circuits = useQuery({
    queryKey: ['queue', 'circuits'],
    queryFn: () => unwrap(api.GET('/api/admin/queue/circuits')),
    refetchInterval: QUEUE_REFRESH_MS,
  })
  return { lag, deadLetters, stepJobs, limiter, circuits }
}

/** A used/limit pair as the page shows it (`3 / 5`, or `3 / ∞` with no limit) and how full it is (0–100). */
export function usage(used: number, limit: number | null | undefined): { label: string; percent: number | null } {
  if (limit === null || limit === undefined) return { label: `${used} / ∞`, percent: null }
  return { label: `${used} / ${limit}`, percent: Math.min(100, Math.round((used / limit) * 100)) }
}

/** An age in seconds as a short text: `42 s`, `7 min`, `3 h`, `2 d`. */
export function shortAge(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h`
  return `${Math.round(seconds / 86_400)} d`
}

/** The points of a sparkline in a `width`×`height` box: oldest on the left, 0 at the bottom. */
export function sparkPoints(values: number[], width: number, height: number): string {
  if (values.length === 0) return ''
  const top = Math.max(1, ...values)
  const step = values.length > 1 ? width / (values.length - 1) : 0
  return values
    .map((value, i) => `${(i * step).toFixed(1)},${(height - (value / top) * height).toFixed(1)}`)
    .join(' ')
}
