import { describe, expect, it } from 'vitest'
import { finalOutputs, inputImage, stepOutputs, viewKind } from './taskOutputs'

const payload = {
  input: { imageAssetId: 'in-1' },
  steps: [
    { step_id: 'image-gen', attempt: 1, assets: [{ asset_id: 'img-1', role: 'image' }] },
    { step_id: '3d-gen', attempt: 1, assets: [{ asset_id: 'glb-1', role: 'model' }, { asset_id: 'png-1', role: 'preview', url: 'https://cdn/x.png' }] },
  ],
  output: { assets: [{ asset_id: 'glb-1', role: 'model' }, { asset_id: 'png-1', role: 'preview' }] },
}

describe('task outputs', () => {
  it('reads the final output and each step', () => {
    expect(finalOutputs(payload).map((o) => `${o.role}:${o.assetId}`)).toEqual(['model:glb-1', 'preview:png-1'])
    expect(stepOutputs(payload).map((s) => s.stepId)).toEqual(['image-gen', '3d-gen'])
    expect(stepOutputs(payload)[1]?.assets[1]?.url).toBe('https://cdn/x.png')
    expect(inputImage(payload)).toBe('in-1')
  })

  it('reads nothing from a payload without output', () => {
    expect(finalOutputs(null)).toEqual([])
    expect(finalOutputs({ output: null })).toEqual([])
    expect(stepOutputs({ steps: 'no' })).toEqual([])
  })

  it('chooses the viewer by role and type', () => {
    expect(viewKind('model', null)).toBe('model')
    expect(viewKind('point_cloud', 'application/x-ply')).toBe('pointcloud')
    expect(viewKind('image', 'image/png')).toBe('image')
    expect(viewKind('other', 'application/zip')).toBe('file')
  })
})
