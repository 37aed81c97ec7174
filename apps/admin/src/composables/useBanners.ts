/**
 * Banners: the list (filtered by type and state, page by page) and the editor (load, check, save, delete).
 * A refusal comes back as the API's problem and its messages by field, for the page to show beside the
 * fields; the checks the form can make itself run first, so an obvious mistake costs no round trip.
 */

import { useInfiniteQuery, useQuery, useQueryClient } from '@tanstack/vue-query'
import { computed, type Ref, ref, watch } from 'vue'
import { api, type Problem, toProblem, unwrap } from '@/api'
import { type AdminBanner, bannerBody, bannerProblems, type BannerForm, type BannerType, blankBanner, fromBanner } from '@/banners/bannerForm'
import { useCreationKey } from '@/composables/useCreationKey'
import { useSubmission } from '@/composables/useSubmission'

export interface BannerFilters {
  type: BannerType | null
  active: boolean | null
}

/** Deletes a banner: null when gone, else the refusal. */
export function useBannerRemoval(): (id: string) => Promise<Problem | null> {
  const queries = useQueryClient()
  return async (id) => {
    try {
      const result = await api.DELETE('/api/admin/banners/{banner_id}', { params: { path: { banner_id: id } } })
      if (!result.response.ok) return toProblem(result.error, result.response.status)
      await queries.invalidateQueries({ queryKey: ['admin-banners'] })
      return null
    } catch {
      return toProblem(null, 0)
    }
  }
}

export function useBannerList(filters: Ref<BannerFilters>) {
  const list = useInfiniteQuery({
    queryKey: ['admin-banners', filters],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(api.GET('/api/admin/banners', { params: { query: { limit: 50, cursor: pageParam, type: filters.value.type, active: filters.value.active } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  })
  const rows = computed(() => list.data.value?.pages.flatMap((page) => page.items) ?? [])
  return { list, rows, remove: useBannerRemoval() }
}

export function useBannerForm(bannerId: () => string | null) {
  const queries = useQueryClient()
  const banner = useQuery({
    queryKey: ['admin-banner', computed(() => bannerId())],
    queryFn: () => unwrap(api.GET('/api/admin/banners/{banner_id}', { params: { path: { banner_id: bannerId() ?? '' } } })),
    enabled: computed(() => bannerId() !== null),
    // The form is the copy being edited: a refetch must not replace it behind the admin's back.
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  })
  const form = ref<BannerForm>(blankBanner())
  const { saving, errors, problem, clear, submit } = useSubmission()
  const creation = useCreationKey()
  const loaded = computed(() => bannerId() === null || banner.data.value !== undefined)
  const checks = computed(() => bannerProblems(form.value))

  watch(
    () => banner.data.value,
    (data) => {
      if (data) form.value = fromBanner(data)
    },
    { immediate: true },
  )

  /** Creates or changes the banner; the banner as stored, or null with `errors`/`problem` saying why. */
  async function save(): Promise<AdminBanner | null> {
    clear()
    if (Object.keys(checks.value).length) return null
    const body = bannerBody(form.value)
    const id = bannerId()
    const stored = await submit(() =>
      id
        ? api.PATCH('/api/admin/banners/{banner_id}', { params: { path: { banner_id: id } }, body })
        : api.POST('/api/admin/banners', { body, headers: { 'Idempotency-Key': creation.keyFor(body) } }),
    )
    if (!stored) return null
    if (!id) creation.succeeded()
    form.value = fromBanner(stored)
    queries.setQueryData(['admin-banner', stored.id], stored)
    await queries.invalidateQueries({ queryKey: ['admin-banners'] })
    return stored
  }

  return { banner, form, errors, checks, problem, saving, loaded, save }
}
