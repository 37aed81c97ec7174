/** What the admin pages show of a task's status: its name in the catalogs and the colour of its tag. */
export const TASK_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const
export type TaskStatus = (typeof TASK_STATUSES)[number]

export function statusTag(status: string): 'success' | 'error' | 'info' | 'default' {
  if (status === 'completed') return 'success'
  if (status === 'failed') return 'error'
  if (status === 'cancelled') return 'default'
  return 'info'
}

export function isActive(status: string): boolean {
  return status === 'pending' || status === 'running'
}

/** A day as the URL keeps it (`2026-12-04`, the admin's own calendar day). */
export function dayOf(ms: number): string {
  const d = new Date(ms)
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`
}

/** Local midnight of a `YYYY-MM-DD` day, or null when the text is not one. */
export function startOfDay(day: string): number | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day)
  if (!match) return null
  const at = new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3]))
  return Number.isNaN(at.getTime()) ? null : at.getTime()
}

/**
 * The search's period for whole days picked in the admin's time zone: from the first day's midnight up to
 * (not including) the midnight after the last day, as instants the API compares with `created_at`.
 */
export function periodOfDays(from: string, to: string): { created_from: string | null; created_to: string | null } {
  const start = startOfDay(from)
  const end = startOfDay(to)
  let until: string | null = null
  if (end !== null) {
    const next = new Date(end)
    next.setDate(next.getDate() + 1)
    until = next.toISOString()
  }
  return { created_from: start === null ? null : new Date(start).toISOString(), created_to: until }
}
