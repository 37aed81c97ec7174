import { describe, expect, it } from 'vitest'
import { checkFile, type UploadApi, type UploadProgress, UploadRefused, uploadFile } from './upload'

const limits = { types: ['image/png', 'image/jpeg'], maxBytes: 1000 }

function fakeApi(): UploadApi & { calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    async requestTicket(request) {
      calls.push(`ticket ${request.filename} ${request.contentType} ${request.size} ${request.module}`)
      return { uploadId: 'up-1', url: 'http://s3/put', method: 'PUT', headers: { 'Content-Type': request.contentType } }
    },
    async put(ticket, file, onProgress) {
      calls.push(`put ${ticket.url} ${file.size}`)
      onProgress(file.size / 2)
      onProgress(file.size)
    },
    async complete(uploadId) {
      calls.push(`complete ${uploadId}`)
      return { id: 'asset-1', filename: 'cat.png', url: 'http://s3/get', mimeType: 'image/png', size: 400 }
    },
  }
}

describe('checkFile', () => {
  it('refuses what the server would refuse, saying why', () => {
    expect(checkFile({ type: 'image/svg+xml', size: 10 }, limits)).toEqual({ kind: 'type', allowed: limits.types })
    expect(checkFile({ type: 'image/png', size: 1001 }, limits)).toEqual({ kind: 'size', maxBytes: 1000 })
    expect(checkFile({ type: 'image/png', size: 0 }, limits)).toEqual({ kind: 'empty' })
    expect(checkFile({ type: 'image/jpeg', size: 1000 }, limits)).toBeNull()
  })
})

describe('uploadFile', () => {
  it('asks for a ticket, sends the bytes with progress, then has the server confirm them', async () => {
    const api = fakeApi()
    const progress: UploadProgress[] = []
    const file = new File([new Uint8Array(400)], 'cat.png', { type: 'image/png' })

    const asset = await uploadFile(api, file, { module: 'uploads', limits, onProgress: (p) => progress.push(p) })

    expect(asset.id).toBe('asset-1')
    expect(api.calls).toEqual(['ticket cat.png image/png 400 uploads', 'put http://s3/put 400', 'complete up-1'])
    expect(progress.map((p) => `${p.phase}:${p.percent}`)).toEqual([
      'checking:0',
      'sending:0',
      'sending:50',
      'sending:100',
      'confirming:100',
      'done:100',
    ])
  })

  it('never asks the server for a file it would refuse', async () => {
    const api = fakeApi()
    const file = new File([new Uint8Array(2000)], 'big.png', { type: 'image/png' })

    await expect(uploadFile(api, file, { module: 'uploads', limits })).rejects.toBeInstanceOf(UploadRefused)
    expect(api.calls).toEqual([])
  })
})
