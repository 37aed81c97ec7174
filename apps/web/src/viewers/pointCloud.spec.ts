import { describe, expect, it } from 'vitest'
import { parsePly, percentile, PlyError, type PointCloud, selectPoints, toTxt, txtColumns, zCropRange } from './pointCloud'

/** A binary little-endian PLY like the local provider writes: x y z (float), r g b (uchar), confidence (float). */
function localPly(points: [number, number, number, number, number, number, number][]): ArrayBuffer {
  const header = [
    'ply',
    'format binary_little_endian 1.0',
    'comment FunMagic local provider point cloud',
    `element vertex ${points.length}`,
    'property float x',
    'property float y',
    'property float z',
    'property uchar red',
    'property uchar green',
    'property uchar blue',
    'property float confidence',
    'end_header',
    '',
  ].join('\n')
  const head = new TextEncoder().encode(header)
  const buffer = new ArrayBuffer(head.length + points.length * 19)
  new Uint8Array(buffer).set(head)
  const view = new DataView(buffer)
  points.forEach(([x, y, z, r, g, b, confidence], i) => {
    const at = head.length + i * 19
    view.setFloat32(at, x, true)
    view.setFloat32(at + 4, y, true)
    view.setFloat32(at + 8, z, true)
    view.setUint8(at + 12, r)
    view.setUint8(at + 13, g)
    view.setUint8(at + 14, b)
    view.setFloat32(at + 15, confidence, true)
  })
  return buffer
}

function text(ply: string): ArrayBuffer {
  return new TextEncoder().encode(ply).buffer as ArrayBuffer
}

function cloudOf(z: number[], confidence: number[] | null = null): PointCloud {
  const positions = new Float32Array(z.length * 3)
  z.forEach((value, i) => (positions[i * 3 + 2] = value))
  return { count: z.length, positions, colors: new Uint8Array(z.length * 3), confidence: confidence ? Float32Array.from(confidence) : null }
}

function shown(cloud: PointCloud, minConfidence: number, zCrop: boolean): number[] {
  const into = new Uint32Array(cloud.count)
  const count = selectPoints(cloud, { minConfidence, zCrop }, zCropRange(cloud), into)
  return [...into.subarray(0, count)]
}

describe('parsePly', () => {
  it('reads the local provider’s binary PLY with its confidence values', () => {
    const cloud = parsePly(localPly([[0.5, -1, 0.25, 255, 0, 10, 0.75], [-0.5, 1, 0, 1, 2, 3, 0.2]]))
    expect(cloud.count).toBe(2)
    expect([...cloud.positions]).toEqual([0.5, -1, 0.25, -0.5, 1, 0])
    expect([...cloud.colors]).toEqual([255, 0, 10, 1, 2, 3])
    expect(cloud.confidence?.[0]).toBeCloseTo(0.75)
    expect(cloud.confidence?.[1]).toBeCloseTo(0.2)
  })

  it('reads an ASCII PLY, skipping elements before the vertices and properties it does not use', () => {
    const cloud = parsePly(
      text(
        [
          'ply', 'format ascii 1.0', 'element camera 1', 'property float fov', 'property list uchar int ids',
          'element vertex 2', 'property double x', 'property double y', 'property double z', 'property float nx',
          'property float red', 'property float green', 'property float blue', 'element face 0',
          'property list uchar int vertex_indices', 'end_header',
          '50 3 1 2 3', '1 2 3 9 1 0.5 0', '4 5 6 9 0 0 1', '',
        ].join('\r\n'),
      ),
    )
    expect([...cloud.positions]).toEqual([1, 2, 3, 4, 5, 6])
    expect([...cloud.colors]).toEqual([255, 128, 0, 0, 0, 255])
    expect(cloud.confidence).toBeNull()
  })

  it('reads a big-endian PLY, and colours points of a PLY without colours in the accent', () => {
    const head = new TextEncoder().encode('ply\nformat binary_big_endian 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n')
    const buffer = new ArrayBuffer(head.length + 12)
    new Uint8Array(buffer).set(head)
    new DataView(buffer).setFloat32(head.length + 8, 2.5, false)
    const cloud = parsePly(buffer)
    expect([...cloud.positions]).toEqual([0, 0, 2.5])
    expect([...cloud.colors]).toEqual([0x8b, 0x5c, 0xf6])
  })

  it('refuses what is not a usable PLY', () => {
    expect(() => parsePly(text('hello'))).toThrow(PlyError)
    expect(() => parsePly(text('ply\nformat ascii 1.0\nelement face 1\nend_header\n'))).toThrow(/no vertex/)
    expect(() => parsePly(text('ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n1\n'))).toThrow(/no y/)
    expect(() => parsePly(localPly([[0, 0, 0, 0, 0, 0, 1]]).slice(0, -4))).toThrow(/ends before/)
  })
})

describe('choosing the points shown', () => {
  it('interpolates percentiles', () => {
    expect(percentile([0, 10], 50)).toBe(5)
    expect(percentile([1, 2, 3, 4, 5], 100)).toBe(5)
    expect(percentile([1, 2, 3, 4, 5], 0)).toBe(1)
    expect(percentile([], 50)).toBeNaN()
  })

  it('hides points below the confidence threshold, the threshold itself included as shown', () => {
    const cloud = cloudOf([0, 0, 0, 0], [0.1, 0.5, 0.9, 0.5])
    expect(shown(cloud, 0, false)).toEqual([0, 1, 2, 3])
    expect(shown(cloud, 0.5, false)).toEqual([1, 2, 3])
    expect(shown(cloud, 0.95, false)).toEqual([])
  })

  it('ignores the threshold for a cloud without confidence values', () => {
    expect(shown(cloudOf([0, 1, 2]), 0.9, false)).toEqual([0, 1, 2])
  })

  it('z-crop drops the stray far and near points and keeps the bulk', () => {
    // 100 points on a slope from 0 to 0.99, plus a far outlier at -50 and a near one at +50.
    const z = [...Array.from({ length: 100 }, (_, i) => i / 100), -50, 50]
    const cloud = cloudOf(z)
    const kept = shown(cloud, 0, true)
    expect(kept).not.toContain(100)
    expect(kept).not.toContain(101)
    expect(kept.length).toBeGreaterThanOrEqual(95)
    expect(shown(cloud, 0, false)).toHaveLength(102)
  })

  it('combines both filters', () => {
    const cloud = cloudOf([...Array.from({ length: 50 }, () => 0), -9, 9], [...Array.from({ length: 50 }, (_, i) => (i % 2 ? 1 : 0)), 1, 1])
    expect(shown(cloud, 0.5, true)).toHaveLength(25)
  })
})

describe('toTxt', () => {
  it('writes x y z r g b confidence lines of the chosen points', () => {
    const cloud = parsePly(localPly([[0.3, -1, 0.125, 255, 0, 10, 0.75], [1, 2, 3, 4, 5, 6, 0.123456]]))
    expect(txtColumns(cloud)).toBe('x y z r g b confidence')
    expect(toTxt(cloud, Uint32Array.from([1, 0]), 2)).toBe('1 2 3 4 5 6 0.1235\n0.3 -1 0.125 255 0 10 0.75\n')
    expect(toTxt(cloud, Uint32Array.from([1, 0]), 1)).toBe('1 2 3 4 5 6 0.1235\n')
    expect(toTxt(cloud, new Uint32Array(0), 0)).toBe('')
  })

  it('leaves the confidence column out when the cloud has none', () => {
    const cloud = cloudOf([2])
    expect(txtColumns(cloud)).toBe('x y z r g b')
    expect(toTxt(cloud, Uint32Array.from([0]), 1)).toBe('0 0 2 0 0 0\n')
  })
})
