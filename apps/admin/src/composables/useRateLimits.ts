/**
 * The gateway's API rate limits and tiers: read once into a form, checked as the gateway checks them,
 * saved whole (a PUT replaces the set; every gateway replica applies it within a second).
 */

import { useQuery, useQueryClient } from '@tanstack/vue-query'
import { computed, ref, watch } from 'vue'
import { api, unwrap } from '@/api'
import { fromSettings, newTier, type RateLimitForm, type RateLimitSettings, settingsBody, type SettingsProblems, settingsProblems } from '@/settings/rateLimitForm'
import { useSubmission } from '@/composables/useSubmission'

export function useRateLimits() {
  const queries = useQueryClient()
  const settings = useQuery({
    queryKey: ['admin-rate-limits'],
    queryFn: () => unwrap(api.GET('/api/admin/settings/rate-limit')),
    // The form is the copy being edited: a refetch must not replace it behind the admin's back.
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  })
  const form = ref<RateLimitForm | null>(null)
  const saved = ref('')
  const { saving, errors, problem, clear, submit } = useSubmission()
  const checks = computed<SettingsProblems>(() => (form.value ? settingsProblems(form.value) : {}))
  const dirty = computed(() => form.value !== null && JSON.stringify(settingsBody(form.value)) !== saved.value)

  function reset(data: RateLimitSettings): void {
    form.value = fromSettings(data)
    saved.value = JSON.stringify(settingsBody(form.value))
  }

  watch(
    () => settings.data.value,
    (data) => {
      if (data) reset(data)
    },
    { immediate: true },
  )

  function addTier(): void {
    if (form.value) form.value.tiers.push(newTier(form.value.tiers))
  }
  function removeTier(index: number): void {
    form.value?.tiers.splice(index, 1)
  }
  function discard(): void {
    if (settings.data.value) reset(settings.data.value)
    clear()
  }

  /** Saves the whole set; the settings as stored, or null with `errors`/`problem` saying why. */
  async function save(): Promise<RateLimitSettings | null> {
    clear()
    if (!form.value || Object.keys(checks.value).length) return null
    const body = settingsBody(form.value)
    const stored = await submit(() => api.PUT('/api/admin/settings/rate-limit', { body }))
    if (stored) {
      reset(stored)
      queries.setQueryData(['admin-rate-limits'], stored)
    }
    return stored
  }

  return { settings, form, errors, checks, problem, saving, dirty, addTier, removeTier, discard, save }
}
