/**
 * Where an admin asset can be seen: storage's answer for it (`GET /api/admin/assets/{id}`: a presigned URL,
 * valid for about an hour, so it is kept for half of that). The key is the image upload's, so an image
 * shown by both is asked for once.
 */

import { useQuery } from '@tanstack/vue-query'
import { computed, type Ref } from 'vue'
import { api, unwrap } from '@/api'

export function useAssetUrl(assetId: Ref<string>) {
  const asset = useQuery({
    queryKey: ['admin-asset', assetId],
    queryFn: () => unwrap(api.GET('/api/admin/assets/{asset_id}', { params: { path: { asset_id: assetId.value } } })),
    staleTime: 30 * 60_000,
  })
  const url = computed(() => asset.data.value?.url ?? null)
  return { asset, url }
}
