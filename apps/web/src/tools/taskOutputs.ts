/**
 * What a task produced, read from its payload (`payload.output.assets`, `payload.steps[].assets`): the
 * asset ids with the part each plays. Pure, so the result views can be tested without a server.
 */

export interface OutputRef {
  assetId: string
  role: string
  /** Present when the API already resolved it (task detail fills `url`). */
  url: string | null
}

function refsOf(value: unknown): OutputRef[] {
  if (!Array.isArray(value)) return []
  return value.flatMap((item) => {
    if (typeof item !== 'object' || item === null) return []
    const record = item as Record<string, unknown>
    const assetId = record.asset_id ?? record.assetId
    if (typeof assetId !== 'string') return []
    return [{ assetId, role: typeof record.role === 'string' ? record.role : 'image', url: typeof record.url === 'string' ? record.url : null }]
  })
}

/** The final output of a task (its last step's assets). */
export function finalOutputs(payload: unknown): OutputRef[] {
  const output = (payload as { output?: { assets?: unknown } } | null)?.output
  return refsOf(output?.assets)
}

/** Each completed step's outputs, in order. */
export function stepOutputs(payload: unknown): { stepId: string; assets: OutputRef[] }[] {
  const steps = (payload as { steps?: unknown } | null)?.steps
  if (!Array.isArray(steps)) return []
  return steps.flatMap((step) => {
    const record = step as Record<string, unknown>
    return typeof record.step_id === 'string' ? [{ stepId: record.step_id, assets: refsOf(record.assets) }] : []
  })
}

/** The input image the user gave (`payload.input.imageAssetId`). */
export function inputImage(payload: unknown): string | null {
  const input = (payload as { input?: { imageAssetId?: unknown } } | null)?.input
  return typeof input?.imageAssetId === 'string' ? input.imageAssetId : null
}

export type ViewKind = 'image' | 'model' | 'pointcloud' | 'file'

export function viewKind(role: string, mimeType: string | null): ViewKind {
  if (role === 'model' || mimeType === 'model/gltf-binary') return 'model'
  if (role === 'point_cloud' || mimeType === 'application/x-ply') return 'pointcloud'
  if (mimeType?.startsWith('image/') || role === 'image' || role === 'preview') return 'image'
  return 'file'
}
