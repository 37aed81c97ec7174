/**
 * Point clouds for the viewer, without three.js: reading a PLY's vertices (ASCII or binary), choosing the
 * points to show (confidence threshold, z-crop) and writing them out as text. Pure functions over typed
 * arrays, so the component only wires them to sliders and a renderer.
 */

/** The vertices of a PLY. Colours are 0..255; `confidence` is null when the file carries none. */
export interface PointCloud {
  count: number
  /** x, y, z per point. */
  positions: Float32Array
  /** r, g, b per point; the viewer's violet where the file has no colours. */
  colors: Uint8Array
  confidence: Float32Array | null
}

/** What the viewer shows: points with confidence >= `minConfidence` (0..1), and within the z-crop if on. */
export interface PointFilter {
  minConfidence: number
  zCrop: boolean
}

/** The z-crop keeps the depth range between these percentiles of z: stray points at either end go. */
export const Z_CROP_PERCENTILES: readonly [number, number] = [2, 98]

/** The colour of points in a PLY without colours (the viewer's accent). */
const PLAIN_COLOR = [0x8b, 0x5c, 0xf6] as const

type Scalar = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64'

const SCALARS: Record<string, Scalar> = {
  char: 'int8', int8: 'int8', uchar: 'uint8', uint8: 'uint8',
  short: 'int16', int16: 'int16', ushort: 'uint16', uint16: 'uint16',
  int: 'int32', int32: 'int32', uint: 'uint32', uint32: 'uint32',
  float: 'float32', float32: 'float32', double: 'float64', float64: 'float64',
}
const SIZES: Record<Scalar, number> = { int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4, float64: 8 }

interface Property {
  name: string
  type: Scalar
  /** The type of a list's length, for list properties (`property list uchar int vertex_indices`). */
  countType?: Scalar
}

interface Element {
  name: string
  count: number
  properties: Property[]
}

type Format = 'ascii' | 'binary_little_endian' | 'binary_big_endian'

export class PlyError extends Error {}

/** The vertices of a PLY file: x, y, z, colour (red/green/blue, or r/g/b) and `confidence` if present. */
export function parsePly(buffer: ArrayBuffer): PointCloud {
  const bytes = new Uint8Array(buffer)
  const { format, elements, bodyStart } = parseHeader(bytes)
  const vertexElement = elements.find((e) => e.name === 'vertex')
  if (!vertexElement) throw new PlyError('the PLY has no vertex element')
  const reader = format === 'ascii' ? asciiReader(bytes, bodyStart) : binaryReader(buffer, bodyStart, format === 'binary_little_endian')

  const cloud = emptyCloud(vertexElement)
  // Elements before the vertices are read past; the ones after (faces, ...) are not needed.
  for (const element of elements) {
    if (element === vertexElement) break
    for (let i = 0; i < element.count; i += 1) for (const property of element.properties) readProperty(reader, property)
  }
  readVertices(reader, vertexElement, cloud)
  return cloud
}

function parseHeader(bytes: Uint8Array): { format: Format; elements: Element[]; bodyStart: number } {
  const marker = indexOf(bytes, 'end_header')
  if (marker < 0 || !startsWith(bytes, 'ply')) throw new PlyError('not a PLY file')
  const newline = bytes.indexOf(0x0a, marker)
  const bodyStart = newline < 0 ? bytes.length : newline + 1
  const lines = new TextDecoder('ascii').decode(bytes.subarray(0, marker)).split(/\r?\n/)
  let format: Format | null = null
  const elements: Element[] = []
  for (const line of lines) {
    const words = line.trim().split(/\s+/)
    if (words[0] === 'format') {
      if (words[1] !== 'ascii' && words[1] !== 'binary_little_endian' && words[1] !== 'binary_big_endian') {
        throw new PlyError(`unknown PLY format ${words[1]}`)
      }
      format = words[1]
    } else if (words[0] === 'element') {
      elements.push({ name: words[1] ?? '', count: Number(words[2]), properties: [] })
    } else if (words[0] === 'property') {
      const element = elements.at(-1)
      if (!element) throw new PlyError('a PLY property outside an element')
      if (words[1] === 'list') {
        element.properties.push({ name: words[4] ?? '', countType: scalar(words[2]), type: scalar(words[3]) })
      } else {
        element.properties.push({ name: words[2] ?? '', type: scalar(words[1]) })
      }
    }
  }
  if (!format) throw new PlyError('the PLY header has no format line')
  for (const element of elements) {
    if (!Number.isInteger(element.count) || element.count < 0) throw new PlyError(`bad count for element ${element.name}`)
  }
  return { format, elements, bodyStart }
}

function scalar(name: string | undefined): Scalar {
  const type = SCALARS[name ?? '']
  if (!type) throw new PlyError(`unknown PLY property type ${name}`)
  return type
}

interface Reader {
  read(type: Scalar): number
}

function binaryReader(buffer: ArrayBuffer, start: number, littleEndian: boolean): Reader {
  const view = new DataView(buffer)
  let offset = start
  return {
    read(type) {
      if (offset + SIZES[type] > view.byteLength) throw new PlyError('the PLY ends before its last vertex')
      let value: number
      switch (type) {
        case 'int8': value = view.getInt8(offset); break
        case 'uint8': value = view.getUint8(offset); break
        case 'int16': value = view.getInt16(offset, littleEndian); break
        case 'uint16': value = view.getUint16(offset, littleEndian); break
        case 'int32': value = view.getInt32(offset, littleEndian); break
        case 'uint32': value = view.getUint32(offset, littleEndian); break
        case 'float32': value = view.getFloat32(offset, littleEndian); break
        case 'float64': value = view.getFloat64(offset, littleEndian); break
      }
      offset += SIZES[type]
      return value
    },
  }
}

function asciiReader(bytes: Uint8Array, start: number): Reader {
  const words = new TextDecoder('ascii').decode(bytes.subarray(start)).split(/\s+/).filter(Boolean)
  let next = 0
  return {
    read() {
      const word = words[next]
      if (word === undefined) throw new PlyError('the PLY ends before its last vertex')
      next += 1
      const value = Number(word)
      if (Number.isNaN(value)) throw new PlyError(`not a number in the PLY: ${word}`)
      return value
    },
  }
}

/** One property's value; a list is read past (the vertices the viewer needs carry no lists). */
function readProperty(reader: Reader, property: Property): number {
  if (property.countType) {
    const length = reader.read(property.countType)
    for (let i = 0; i < length; i += 1) reader.read(property.type)
    return length
  }
  return reader.read(property.type)
}

function emptyCloud(element: Element): PointCloud {
  const has = (name: string) => element.properties.some((p) => p.name === name && !p.countType)
  for (const axis of ['x', 'y', 'z']) if (!has(axis)) throw new PlyError(`the PLY vertices have no ${axis}`)
  const colors = new Uint8Array(element.count * 3)
  for (let i = 0; i < element.count; i += 1) colors.set(PLAIN_COLOR, i * 3)
  return {
    count: element.count,
    positions: new Float32Array(element.count * 3),
    colors,
    confidence: has('confidence') ? new Float32Array(element.count) : null,
  }
}

/** Where each property of a vertex goes: a slot in positions/colors/confidence, or nowhere. */
const SLOTS: Record<string, ['position' | 'color', number] | ['confidence', 0]> = {
  x: ['position', 0], y: ['position', 1], z: ['position', 2],
  red: ['color', 0], green: ['color', 1], blue: ['color', 2],
  r: ['color', 0], g: ['color', 1], b: ['color', 2],
  confidence: ['confidence', 0],
}

function readVertices(reader: Reader, element: Element, cloud: PointCloud): void {
  for (let i = 0; i < element.count; i += 1) {
    for (const property of element.properties) {
      const value = readProperty(reader, property)
      const slot = property.countType ? undefined : SLOTS[property.name]
      if (!slot) continue
      if (slot[0] === 'position') cloud.positions[i * 3 + slot[1]] = value
      else if (slot[0] === 'confidence') cloud.confidence![i] = value
      else cloud.colors[i * 3 + slot[1]] = colorByte(value, property.type)
    }
  }
}

/** A colour channel as 0..255: float channels are 0..1, 16-bit ones are scaled down. */
function colorByte(value: number, type: Scalar): number {
  if (type === 'float32' || type === 'float64') return Math.round(Math.min(Math.max(value, 0), 1) * 255)
  if (type === 'uint16' || type === 'int16') return Math.round(Math.min(Math.max(value, 0), 65535) / 257)
  return Math.min(Math.max(value, 0), 255)
}

function indexOf(bytes: Uint8Array, text: string): number {
  const first = text.charCodeAt(0)
  const limit = Math.min(bytes.length - text.length, 64 * 1024) // headers are small; don't scan the body
  for (let i = bytes.indexOf(first); i >= 0 && i <= limit; i = bytes.indexOf(first, i + 1)) {
    if (startsWith(bytes, text, i)) return i
  }
  return -1
}

function startsWith(bytes: Uint8Array, text: string, at = 0): boolean {
  for (let i = 0; i < text.length; i += 1) if (bytes[at + i] !== text.charCodeAt(i)) return false
  return true
}

// --- choosing the points shown --------------------------------------------------------------------

/** The value below which `percent` % of `sorted` (ascending) lies, linearly interpolated. */
export function percentile(sorted: ArrayLike<number>, percent: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = (Math.min(Math.max(percent, 0), 100) / 100) * (sorted.length - 1)
  const low = Math.floor(rank)
  const high = Math.min(low + 1, sorted.length - 1)
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low)
}

/** The z range the z-crop keeps, from all points (so it doesn't move with the confidence threshold). */
export function zCropRange(cloud: PointCloud): [number, number] {
  const z = new Float32Array(cloud.count)
  for (let i = 0; i < cloud.count; i += 1) z[i] = cloud.positions[i * 3 + 2]!
  z.sort()
  return [percentile(z, Z_CROP_PERCENTILES[0]), percentile(z, Z_CROP_PERCENTILES[1])]
}

/**
 * The indices of the points shown, ascending, written into `into` (reused between calls to spare the
 * garbage collector on every slider step); returns how many there are. Without confidence values the
 * threshold is ignored.
 */
export function selectPoints(cloud: PointCloud, filter: PointFilter, zRange: [number, number], into: Uint32Array): number {
  const [zLow, zHigh] = zRange
  let shown = 0
  for (let i = 0; i < cloud.count; i += 1) {
    if (cloud.confidence && cloud.confidence[i]! < filter.minConfidence) continue
    if (filter.zCrop) {
      const z = cloud.positions[i * 3 + 2]!
      if (z < zLow || z > zHigh) continue
    }
    into[shown] = i
    shown += 1
  }
  return shown
}

// --- text export ------------------------------------------------------------------------------------

/** The columns of a TXT export line, for the UI to name them. */
export function txtColumns(cloud: PointCloud): string {
  return cloud.confidence ? 'x y z r g b confidence' : 'x y z r g b'
}

/** The points `indices[0..count)` as text: one `x y z r g b [confidence]` line per point. */
export function toTxt(cloud: PointCloud, indices: Uint32Array, count: number): string {
  const lines: string[] = new Array(count)
  for (let n = 0; n < count; n += 1) {
    const i = indices[n]!
    const p = cloud.positions
    const c = cloud.colors
    let line = `${num(p[i * 3]!)} ${num(p[i * 3 + 1]!)} ${num(p[i * 3 + 2]!)} ${c[i * 3]} ${c[i * 3 + 1]} ${c[i * 3 + 2]}`
    if (cloud.confidence) line += ` ${Number(cloud.confidence[i]!.toFixed(4))}`
    lines[n] = line
  }
  return lines.length ? lines.join('\n') + '\n' : ''
}

/** A float32 coordinate in its shortest faithful form (7 significant digits): `0.3`, not `0.30000001192…`. */
function num(value: number): string {
  return String(Number(value.toPrecision(7)))
}
