import { describe, expect, it } from 'vitest'
import { ProblemError, toProblem } from '@/api'
import type { UploadApi, UploadTicket } from '@shared/upload/upload'
import { useImageUpload } from './useImageUpload'

/** Storage as the upload flow sees it, recording what it was asked; `refuse`: the problem the ticket meets. */
function storage(refuse?: ProblemError) {
  const asked: string[] = []
  const api: UploadApi = {
    async requestTicket(request) {
      asked.push(`ticket ${request.module} ${request.filename} ${request.contentType} ${request.size}`)
      if (refuse) throw refuse
      return { uploadId: 'u-1', url: 'https://s3/put', method: 'PUT', headers: {} }
    },
    async put(ticket: UploadTicket, file: Blob, onProgress: (sent: number) => void) {
      asked.push(`put ${ticket.uploadId}`)
      onProgress(file.size)
    },
    async complete(uploadId) {
      asked.push(`complete ${uploadId}`)
      return { id: 'asset-1', filename: 'style.png', url: 'https://s3/get', mimeType: 'image/png', size: 3 }
    },
  }
  return { api, asked }
}

describe('an admin image upload', () => {
  it('asks for a ticket in the module, puts the bytes, confirms, and gives the asset', async () => {
    const fake = storage()
    const upload = useImageUpload(() => 'tools', fake.api)
    const asset = await upload.upload(new File([new Uint8Array([1, 2, 3])], 'style.png', { type: 'image/png' }))
    expect(asset?.id).toBe('asset-1')
    expect(fake.asked).toEqual(['ticket tools style.png image/png 3', 'put u-1', 'complete u-1'])
    expect(upload.percent.value).toBeNull()
    expect(upload.failure.value).toBeNull()
  })

  it('refuses a file that is not an image before anything is sent', async () => {
    const fake = storage()
    const upload = useImageUpload(() => 'tools', fake.api)
    expect(await upload.upload(new File(['<svg/>'], 'x.svg', { type: 'image/svg+xml' }))).toBeNull()
    expect(upload.failure.value?.kind).toBe('type')
    expect(fake.asked).toEqual([])
  })

  it('says what the server refused', async () => {
    const fake = storage(new ProblemError(toProblem({ detail: 'this needs the admin role', code: 'forbidden' }, 403)))
    const upload = useImageUpload(() => 'tools', fake.api)
    expect(await upload.upload(new File([new Uint8Array([1])], 'a.png', { type: 'image/png' }))).toBeNull()
    expect(upload.failure.value).toMatchObject({ kind: 'problem', problem: { status: 403, detail: 'this needs the admin role' } })
  })
})
