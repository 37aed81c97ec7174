/**
 * The gateway's API rate limits and tiers: read once into a form, checked as the gateway checks them,
 * saved whole (a PUT replaces the set; every gateway replica applies it within a second).
 */

import { useQuery, useQueryClient } from '@tanstack/vue-query'
import { computed, ref, watch } from 'vue'
import { api, type Problem, toProblem, unwrap } from '@/api'
import { fromSettings, newTier, type RateLimitForm, type RateLimitSettings, settingsBody, type SettingsProblems, settingsProblems } from '@/settings/rateLimitForm'
import { fieldErrors } from '@/tools/toolForm'

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
  const errors = ref<Record<string, string>>({})
  const problem = ref<Problem | null>(null)
  const saving = ref(false)
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
    errors.value = {}
    problem.value = null
  }

  /** Saves the whole set; the settings as stored, or null with `errors`/`problem` saying why. */
  async function save(): Promise<RateLimitSettings | null> {
    errors.value = {}
    problem.value = null
    if (!form.value || Object.keys(checks.value).length) return null
    saving.value = true
    try {
      const result = await api.PUT('/api/admin/settings/rate-limit', { body: settingsBody(form.value) })
      if (!result.response.ok || !result.data) {
        problem.value = toProblem(result.error, result.response.status)
        errors.value = fieldErrors(result.error)
        return null
      }
      reset(result.data)
      queries.setQueryData(['admin-rate-limits'], result.data)
      return result.data
    } catch {
      problem.value = toProblem(null, 0)
      return null
    } finally {
      saving.value = false
    }
  }

  return { settings, form, errors, checks, problem, saving, dirty, addTier, removeTier, discard, save }
}
