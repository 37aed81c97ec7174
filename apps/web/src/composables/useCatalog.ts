/** The public catalog (tool types, tools, banners), in the page's locale, cached by TanStack Query. */

import { useInfiniteQuery, useQuery } from '@tanstack/vue-query'
import { computed, type Ref } from 'vue'
import { useI18n } from 'vue-i18n'
import { api } from '@/api/client'
import { unwrap } from '@/api/problem'
import type { components } from '@/api/schema'

export type ToolSummary = components['schemas']['ToolSummary']
export type ToolDetail = components['schemas']['ToolDetail']
export type Banner = components['schemas']['BannerView']
export type ToolType = components['schemas']['ToolTypeView']

/** An image URL the API may attach to a catalog entry (`thumbnail_url`), when there is one. */
export function imageOf(entry: object): string | null {
  const url = (entry as { thumbnail_url?: unknown }).thumbnail_url
  return typeof url === 'string' && url !== '' ? url : null
}

function useLocale(): Ref<string> {
  return useI18n().locale as Ref<string>
}

export function useToolTypes() {
  const locale = useLocale()
  return useQuery({
    queryKey: ['tool-types', locale],
    queryFn: () => unwrap(api.GET('/api/tool-types', { params: { query: { locale: locale.value as never, limit: 50 } } })),
  })
}

export function useBanners() {
  const locale = useLocale()
  return useQuery({
    queryKey: ['banners', locale],
    queryFn: () => unwrap(api.GET('/api/banners', { params: { query: { locale: locale.value as never, limit: 20 } } })),
  })
}

export function useTools(filters: Ref<{ q?: string; type?: string; featured?: boolean }>) {
  const locale = useLocale()
  return useInfiniteQuery({
    queryKey: ['tools', locale, filters],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/tools', {
          params: {
            query: {
              locale: locale.value as never,
              limit: 12,
              ...(filters.value.q ? { q: filters.value.q } : {}),
              ...(filters.value.type ? { type: filters.value.type } : {}),
              ...(filters.value.featured ? { featured: true } : {}),
              ...(pageParam ? { cursor: pageParam } : {}),
            },
          },
        }),
      ),
    getNextPageParam: (page) => page.next_cursor ?? null,
  })
}

export function useTool(slug: Ref<string>) {
  const locale = useLocale()
  return useQuery({
    queryKey: ['tool', slug, locale],
    queryFn: () => unwrap(api.GET('/api/tools/{slug}', { params: { path: { slug: slug.value }, query: { locale: locale.value as never } } })),
    retry: false,
  })
}

export function useToolsList(filters: Ref<{ q?: string; type?: string; featured?: boolean }>) {
  const query = useTools(filters)
  const tools = computed(() => query.data.value?.pages.flatMap((page) => page.items) ?? [])
  return { ...query, tools }
}

/** Tool titles in the page's locale by slug: `titleOf(slug)` is the title, or the slug for a tool no longer listed. */
export function useToolTitles() {
  const locale = useLocale()
  const tools = useQuery({
    queryKey: ['tool-titles', locale],
    queryFn: () => unwrap(api.GET('/api/tools', { params: { query: { locale: locale.value as never, limit: 100 } } })),
  })
  const titles = computed(() => new Map((tools.data.value?.items ?? []).map((tool) => [tool.slug, tool.title])))
  return { titleOf: (slug: string): string => titles.value.get(slug) ?? slug }
}
