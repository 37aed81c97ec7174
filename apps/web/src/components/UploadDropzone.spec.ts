import { mount } from '@vue/test-utils'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createI18n } from 'vue-i18n'
import en from '@/i18n/en'
import UploadDropzone from './UploadDropzone.vue'

const uploadFile = vi.hoisted(() => vi.fn())
vi.mock('@/upload/upload', async (importOriginal) => ({ ...(await importOriginal<typeof import('@/upload/upload')>()), uploadFile }))

function mountDropzone(disabled: boolean) {
  const i18n = createI18n({ legacy: false, locale: 'en', messages: { en } })
  return mount(UploadDropzone, { props: { disabled }, global: { plugins: [i18n] } })
}

function drop(wrapper: ReturnType<typeof mountDropzone>) {
  const file = new File(['png'], 'cat.png', { type: 'image/png' })
  return wrapper.get('[data-testid="dropzone"]').trigger('drop', { dataTransfer: { files: [file] } })
}

describe('UploadDropzone', () => {
  beforeEach(() => {
    uploadFile.mockReset()
    uploadFile.mockResolvedValue({ id: 'asset-1', filename: 'cat.png', url: 'http://s3/get', mimeType: 'image/png', size: 3 })
    URL.createObjectURL = vi.fn(() => 'blob:preview')
    URL.revokeObjectURL = vi.fn()
  })

  it('ignores a file dropped while it is disabled', async () => {
    const wrapper = mountDropzone(true)
    await drop(wrapper)
    expect(uploadFile).not.toHaveBeenCalled()
    expect(wrapper.emitted('uploaded')).toBeUndefined()
    expect(wrapper.find('img').exists()).toBe(false) // no preview either
  })

  it('uploads a file dropped while it is enabled', async () => {
    const wrapper = mountDropzone(false)
    await drop(wrapper)
    await vi.waitFor(() => expect(wrapper.emitted('uploaded')).toHaveLength(1))
    expect(uploadFile).toHaveBeenCalledOnce()
  })

  it('keeps its hidden file input out of the tab order, with a name', () => {
    const input = mountDropzone(false).get('[data-testid="file-input"]')
    expect(input.attributes('tabindex')).toBe('-1')
    expect(input.attributes('aria-label')).toBe('Choose a photo')
  })
})
