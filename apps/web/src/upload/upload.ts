/**
 * Uploading a file the platform's way: check it here with the server's own limits (so the user hears "too
 * large" at once, not after the bytes went up), ask for a presigned PUT, send the bytes straight to S3 with
 * real progress, then ask the server to confirm the object (it checks size and type itself).
 *
 * The three steps are injected (`UploadApi`): the app passes its API client and an XHR sender; tests pass
 * fakes that record what was asked.
 */

export interface UploadLimits {
  /** MIME types the server accepts for user uploads. */
  types: readonly string[]
  /** Largest size in bytes. */
  maxBytes: number
}

export interface UploadTicket {
  uploadId: string
  url: string
  method: string
  headers: Record<string, string>
}

export interface UploadedAsset {
  id: string
  filename: string
  url: string
  mimeType: string
  size: number
}

export interface UploadApi {
  requestTicket(request: { filename: string; contentType: string; size: number; module: string }): Promise<UploadTicket>
  put(ticket: UploadTicket, file: Blob, onProgress: (sentBytes: number) => void, signal?: AbortSignal): Promise<void>
  complete(uploadId: string): Promise<UploadedAsset>
}

export type UploadRefusal = { kind: 'type'; allowed: readonly string[] } | { kind: 'size'; maxBytes: number } | { kind: 'empty' }

export class UploadRefused extends Error {
  constructor(readonly refusal: UploadRefusal) {
    super(refusal.kind)
  }
}

/** Why the server would refuse this file, or null when it may go up. */
export function checkFile(file: { type: string; size: number }, limits: UploadLimits): UploadRefusal | null {
  if (file.size === 0) return { kind: 'empty' }
  if (!limits.types.includes(file.type)) return { kind: 'type', allowed: limits.types }
  if (file.size > limits.maxBytes) return { kind: 'size', maxBytes: limits.maxBytes }
  return null
}

export interface UploadProgress {
  /** 0–100, of the bytes sent to storage. */
  percent: number
  phase: 'checking' | 'sending' | 'confirming' | 'done'
}

export async function uploadFile(
  api: UploadApi,
  file: File,
  options: { module: string; limits: UploadLimits; onProgress?: (progress: UploadProgress) => void; signal?: AbortSignal },
): Promise<UploadedAsset> {
  const report = options.onProgress ?? (() => {})
  report({ percent: 0, phase: 'checking' })
  const refusal = checkFile(file, options.limits)
  if (refusal !== null) throw new UploadRefused(refusal)
  const ticket = await api.requestTicket({ filename: file.name, contentType: file.type, size: file.size, module: options.module })
  report({ percent: 0, phase: 'sending' })
  await api.put(ticket, file, (sent) => report({ percent: Math.min(100, Math.floor((sent / file.size) * 100)), phase: 'sending' }), options.signal)
  report({ percent: 100, phase: 'confirming' })
  const asset = await api.complete(ticket.uploadId)
  report({ percent: 100, phase: 'done' })
  return asset
}

/** The browser's way to PUT with upload progress (fetch cannot report it). */
export function xhrPut(ticket: UploadTicket, file: Blob, onProgress: (sentBytes: number) => void, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open(ticket.method, ticket.url)
    for (const [name, value] of Object.entries(ticket.headers)) {
      // The browser sets Content-Length itself and refuses to be told.
      if (name.toLowerCase() !== 'content-length') xhr.setRequestHeader(name, value)
    }
    xhr.upload.onprogress = (event) => onProgress(event.loaded)
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(`storage answered ${xhr.status}`)))
    xhr.onerror = () => reject(new Error('the upload was interrupted'))
    xhr.onabort = () => reject(new DOMException('cancelled', 'AbortError'))
    signal?.addEventListener('abort', () => xhr.abort())
    xhr.send(file)
  })
}
