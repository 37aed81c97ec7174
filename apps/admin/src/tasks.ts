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
