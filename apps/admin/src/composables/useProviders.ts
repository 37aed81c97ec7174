/**
 * The provider registries — web scope (`/api/admin/providers`, admins) and the studio's admin scope
 * (`/api/admin/admin-providers`, super admins only; the API answers anyone else 403) — one shape, two
 * paths: `providerApi(scope)` picks the path, typed for each.
 *
 * The editor loads a provider, saves it (a PATCH carries the key only when the admin replaced it), deletes
 * it, checks its health now, and pages through its health history, newest first.
 */

import { useInfiniteQuery, useQuery, useQueryClient } from '@tanstack/vue-query'
import { computed, ref, watch } from 'vue'
import { api, type Problem, toProblem, unwrap } from '@/api'
import {
  blankProvider,
  createBody,
  fromProvider,
  type Provider,
  type ProviderCreateBody,
  type ProviderForm,
  providerProblems,
  type ProviderUpdateBody,
  type Scope,
  updateBody,
} from '@/providers/providerForm'
import { useCreationKey } from '@/composables/useCreationKey'
import { useSubmission } from '@/composables/useSubmission'

/**
 * The registry's calls for one scope (the same operations on two paths). `create` sends `key` as the
 * Idempotency-Key: a retry with it (same body) answers with the provider its first request created.
 */
export function providerApi(scope: Scope) {
  const item = (id: string) => ({ params: { path: { provider_id: id } } })
  const once = (key: string) => ({ 'Idempotency-Key': key })
  if (scope === 'web') {
    return {
      list: (cursor: string | null) => api.GET('/api/admin/providers', { params: { query: { limit: 100, cursor } } }),
      get: (id: string) => api.GET('/api/admin/providers/{provider_id}', item(id)),
      create: (body: ProviderCreateBody, key: string) => api.POST('/api/admin/providers', { body, headers: once(key) }),
      update: (id: string, body: ProviderUpdateBody) => api.PATCH('/api/admin/providers/{provider_id}', { ...item(id), body }),
      remove: (id: string) => api.DELETE('/api/admin/providers/{provider_id}', item(id)),
      check: (id: string) => api.POST('/api/admin/providers/{provider_id}/health-check', item(id)),
      history: (id: string, cursor: string | null) =>
        api.GET('/api/admin/providers/{provider_id}/health-history', { params: { path: { provider_id: id }, query: { limit: 10, cursor } } }),
    }
  }
  return {
    list: (cursor: string | null) => api.GET('/api/admin/admin-providers', { params: { query: { limit: 100, cursor } } }),
    get: (id: string) => api.GET('/api/admin/admin-providers/{provider_id}', item(id)),
    create: (body: ProviderCreateBody, key: string) => api.POST('/api/admin/admin-providers', { body, headers: once(key) }),
    update: (id: string, body: ProviderUpdateBody) => api.PATCH('/api/admin/admin-providers/{provider_id}', { ...item(id), body }),
    remove: (id: string) => api.DELETE('/api/admin/admin-providers/{provider_id}', item(id)),
    check: (id: string) => api.POST('/api/admin/admin-providers/{provider_id}/health-check', item(id)),
    history: (id: string, cursor: string | null) =>
      api.GET('/api/admin/admin-providers/{provider_id}/health-history', { params: { path: { provider_id: id }, query: { limit: 10, cursor } } }),
  }
}

export function useProviderList(scope: () => Scope) {
  const list = useInfiniteQuery({
    queryKey: ['admin-providers', computed(() => scope())],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) => unwrap(providerApi(scope()).list(pageParam)),
    getNextPageParam: (page) => page.next_cursor ?? null,
  })
  const rows = computed(() => list.data.value?.pages.flatMap((page) => page.items) ?? [])
  return { list, rows }
}

export function useProviderForm(scope: () => Scope, providerId: () => string | null) {
  const queries = useQueryClient()
  const calls = computed(() => providerApi(scope()))
  const provider = useQuery({
    queryKey: ['admin-provider', computed(() => scope()), computed(() => providerId())],
    queryFn: () => unwrap(calls.value.get(providerId() ?? '')),
    enabled: computed(() => providerId() !== null),
    // The form is the copy being edited: a refetch must not replace it behind the admin's back.
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  })
  const form = ref<ProviderForm>(blankProvider())
  /** The provider as stored (its key hint and health), kept current by saves and checks. */
  const stored = ref<Provider | null>(null)
  const { saving, errors, problem, clear, submit } = useSubmission()
  const creation = useCreationKey()
  const checking = ref(false)
  const creating = computed(() => providerId() === null)
  const loaded = computed(() => creating.value || provider.data.value !== undefined)
  const checks = computed(() => providerProblems(form.value, creating.value, stored.value?.base_url))

  function reset(data: Provider): void {
    stored.value = data
    form.value = fromProvider(data)
  }

  watch(
    () => provider.data.value,
    (data) => {
      if (data) reset(data)
    },
    { immediate: true },
  )

  async function refresh(data: Provider): Promise<void> {
    queries.setQueryData(['admin-provider', scope(), data.id], data)
    await queries.invalidateQueries({ queryKey: ['admin-providers'] })
  }

  /** Creates or changes the provider; it as stored, or null with `errors`/`problem` saying why. */
  async function save(): Promise<Provider | null> {
    clear()
    if (Object.keys(checks.value).length) return null
    const id = providerId()
    const saved = await submit(() => {
      if (id) return calls.value.update(id, updateBody(form.value))
      const body = createBody(form.value)
      return calls.value.create(body, creation.keyFor(body))
    })
    if (!saved) {
      // The server's sentence names the clash; the alert above the form says it too when it has none.
      if (problem.value?.code === 'provider_exists' && problem.value.detail) errors.value = { ...errors.value, name: problem.value.detail }
      return null
    }
    if (!id) creation.succeeded()
    reset(saved)
    await refresh(saved)
    return saved
  }

  /** Deletes the provider: null when gone, else the refusal. */
  async function remove(): Promise<Problem | null> {
    const id = providerId()
    if (!id) return null
    try {
      const result = await calls.value.remove(id)
      if (!result.response.ok) return toProblem(result.error, result.response.status)
      await queries.invalidateQueries({ queryKey: ['admin-providers'] })
      return null
    } catch {
      return toProblem(null, 0)
    }
  }

  /** Checks the provider now: it as stored after the check (its health), or the refusal. */
  async function checkHealth(): Promise<Provider | Problem> {
    const id = providerId()
    if (!id) return toProblem(null, 0)
    checking.value = true
    try {
      const result = await calls.value.check(id)
      if (!result.response.ok || !result.data) return toProblem(result.error, result.response.status)
      stored.value = result.data
      await refresh(result.data)
      await queries.invalidateQueries({ queryKey: ['admin-provider-health', scope(), id] })
      return result.data
    } catch {
      return toProblem(null, 0)
    } finally {
      checking.value = false
    }
  }

  return { provider, form, stored, errors, checks, problem, saving, checking, creating, loaded, save, remove, checkHealth }
}

export function useHealthHistory(scope: () => Scope, providerId: () => string | null) {
  const history = useInfiniteQuery({
    queryKey: ['admin-provider-health', computed(() => scope()), computed(() => providerId())],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) => unwrap(providerApi(scope()).history(providerId() ?? '', pageParam)),
    getNextPageParam: (page) => page.next_cursor ?? null,
    enabled: computed(() => providerId() !== null),
  })
  const rows = computed(() => history.data.value?.pages.flatMap((page) => page.items) ?? [])
  return { history, rows }
}

export function isProblem(value: Provider | Problem): value is Problem {
  return 'status' in value && 'code' in value
}
