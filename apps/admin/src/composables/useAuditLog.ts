/**
 * The audit log as the page reads it: keyset pages of the merged log, with the filters kept in the URL so
 * a link to "everything done to this user" can be shared.
 */
import { useInfiniteQuery } from '@tanstack/vue-query'
import { computed, type Ref } from 'vue'
import { api, unwrap, type components } from '@/api'

export type AuditFilters = { service: string | null; action: string; subject: string; actor: string }
export type AuditEntry = components['schemas']['AuditEntry']
export const AUDITED_SERVICES = ['identity', 'credits', 'tasks', 'providers', 'storage'] as const
type Service = (typeof AUDITED_SERVICES)[number]

export function auditQuery(filters: AuditFilters) {
  const service = (AUDITED_SERVICES as readonly (string | null)[]).includes(filters.service) ? (filters.service as Service) : null
  return {
    service,
    action: filters.action.trim() || null,
    subject_id: filters.subject.trim() || null,
    actor_id: filters.actor.trim() || null,
  }
}

/** Where an entry's subject can be seen in the app, when it has a page. */
export function subjectRoute(entry: Pick<AuditEntry, 'subject_type' | 'subject_id'>) {
  if (entry.subject_type === 'user') return { name: 'user', params: { id: entry.subject_id } }
  if (entry.subject_type === 'task') return { name: 'task', params: { id: entry.subject_id } }
  if (entry.subject_type === 'tool') return { name: 'tool', params: { id: entry.subject_id } }
  return null
}

export function useAuditLog(filters: Ref<AuditFilters>) {
  const log = useInfiniteQuery({
    queryKey: ['audit', filters],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(api.GET('/api/admin/audit', { params: { query: { limit: 50, cursor: pageParam, ...auditQuery(filters.value) } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  })
  const entries = computed(() => log.data.value?.pages.flatMap((page) => page.items) ?? [])
  return { log, entries }
}
