/** The studio's providers and the models each offers (with their options), for the prompt bar and the chat form. */

import { useQuery } from '@tanstack/vue-query'
import { computed } from 'vue'
import { api, unwrap } from '@/api'

export function useStudioProviders() {
  const providers = useQuery({
    queryKey: ['studio-models'],
    queryFn: () => unwrap(api.GET('/api/admin/studio/providers')),
    staleTime: 5 * 60_000,
  })
  const items = computed(() => providers.data.value?.items ?? [])
  return { providers, items }
}
