/**
 * An admin's image upload (a tool's thumbnail, a style reference, a banner): the platform's presigned flow
 * into the admin-only bucket — `POST /api/admin/assets/uploads` for a presigned PUT, the bytes straight to
 * S3, then the confirmation that turns the object into an asset. The flow itself (checks, progress) is the
 * web app's (`@shared/upload/upload`); only the first call differs. The catalog publishes the asset when
 * the tool or banner that names it is saved.
 */

import { ref } from 'vue'
import { api, type Problem, ProblemError, unwrap } from '@/api'
import { problemText, type Translate } from '@/composables/useProblemText'
import { type UploadApi, type UploadedAsset, type UploadLimits, UploadRefused, type UploadRefusal, uploadFile, xhrPut } from '@shared/upload/upload'

/** What storage takes as an image (its `USER_UPLOAD_TYPES`, `UPLOAD_MAX_BYTES`). */
export const ADMIN_IMAGES: UploadLimits = {
  types: ['image/png', 'image/jpeg', 'image/webp', 'image/gif'],
  maxBytes: 20 * 1024 * 1024,
}

export const adminUploadApi: UploadApi = {
  async requestTicket(request) {
    const ticket = await unwrap(
      api.POST('/api/admin/assets/uploads', {
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

/** Why an upload failed, for the message: a refusal before sending, the platform's problem, or anything else. */
export type UploadFailure = UploadRefusal | { kind: 'problem'; problem: Problem } | { kind: 'other' }

export function failureOf(error: unknown): UploadFailure {
  if (error instanceof UploadRefused) return error.refusal
  if (error instanceof ProblemError) return { kind: 'problem', problem: error.problem }
  return { kind: 'other' }
}

/** What to tell the admin about a failed upload, in their language (`t` is vue-i18n's). */
export function uploadFailureText(failure: UploadFailure | null, t: Translate): string | null {
  if (failure === null) return null
  if (failure.kind === 'type') return t('imageUpload.type', { types: 'PNG, JPEG, WEBP, GIF' })
  if (failure.kind === 'size') return t('imageUpload.size', { mb: ADMIN_IMAGES.maxBytes / (1024 * 1024) })
  if (failure.kind === 'empty') return t('imageUpload.empty')
  if (failure.kind === 'problem') return problemText(failure.problem, t)
  return t('imageUpload.failed')
}

export function useImageUpload(module: () => string, uploader: UploadApi = adminUploadApi) {
  const percent = ref<number | null>(null)
  const failure = ref<UploadFailure | null>(null)

  async function upload(file: File): Promise<UploadedAsset | null> {
    failure.value = null
    percent.value = 0
    try {
      return await uploadFile(uploader, file, { module: module(), limits: ADMIN_IMAGES, onProgress: (p) => (percent.value = p.percent) })
    } catch (error) {
      failure.value = failureOf(error)
      return null
    } finally {
      percent.value = null
    }
  }

  return { percent, failure, upload }
}
