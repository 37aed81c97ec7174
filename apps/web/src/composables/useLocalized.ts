/** Links that keep the current locale prefix (vue-router does not carry optional params over by itself). */

import { computed } from 'vue'
import { type LocationQueryRaw, type RouteLocationRaw, useRoute } from 'vue-router'
import { isLocale } from '@/i18n/locales'

export function useLocalized() {
  const route = useRoute()
  const locale = computed(() => (isLocale(route.params.locale) ? route.params.locale : ''))
  function to(name: string, params: Record<string, string> = {}, query?: LocationQueryRaw): RouteLocationRaw {
    return { name, params: { ...params, locale: locale.value }, ...(query ? { query } : {}) }
  }
  return { locale, to }
}
