/** Uploads through the platform's presigned flow with the API client; see `upload/upload.ts`. */

import { api } from '@/api/client'
import { unwrap } from '@/api/problem'
import { type UploadApi, type UploadLimits, xhrPut } from '@/upload/upload'

/** The server's limits for user uploads (storage's `USER_UPLOAD_TYPES`, `UPLOAD_MAX_BYTES`). */
export const USER_UPLOADS: UploadLimits = {
  types: ['image/png', 'image/jpeg', 'image/webp', 'image/gif'],
  maxBytes: 20 * 1024 * 1024,
}

export const uploadApi: UploadApi = {
  async requestTicket(request) {
    const ticket = await unwrap(
      api.POST('/api/assets/uploads', {
        body: { filename: request.filename, content_type: request.contentType, size: request.size, module: request.module },
      }),
    )
    return { uploadId: ticket.upload_id, url: ticket.url, method: ticket.method, headers: ticket.headers }
  },
  put: xhrPut,
  async complete(uploadId) {
    const asset = await unwrap(api.POST('/api/assets/uploads/{upload_id}/complete', { params: { path: { upload_id: uploadId } } }))
    return { id: asset.id, filename: asset.filename, url: asset.url, mimeType: asset.mime_type, size: asset.size }
  },
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${Math.round(bytes / (1024 * 1024))} MB`
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`
  return `${bytes} B`
}
