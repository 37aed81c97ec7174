import { describe, expect, it } from 'vitest'
import { formFor, nextStepAfter, problemsOf, taskRequest, type ToolConfig } from './stepForm'

const figme: ToolConfig = {
  steps: [
    { id: 'image-gen', name: 'Figurine', type: 'image-gen', cost: 20, input: { image: 'required', prompt: 'optional' } },
    { id: '3d-gen', name: '3D Model', type: '3d-gen', cost: 30, input: { image: 'required', prompt: 'none' } },
  ],
  styleReferences: [{ id: 'style-anime', name: 'Anime', prompt: 'anime figurine' }],
  pipeline: false,
}
const backgroundRemove: ToolConfig = {
  steps: [{ id: 'remove-bg', name: 'Remove', type: 'remove-bg', cost: 5, input: { image: 'required', prompt: 'none' } }],
  styleReferences: [],
  pipeline: true,
}
const textToImage: ToolConfig = {
  steps: [{ id: 'gen', name: 'Generate', type: 'image-gen', cost: 10, input: { image: 'none', prompt: 'required' } }],
  styleReferences: [{ id: 's', name: 'S', prompt: 'p' }],
  pipeline: true,
}

describe('formFor', () => {
  it('starts a chained tool with its first step only, offering its style references', () => {
    const form = formFor(figme, null)
    expect(form).toMatchObject({ stepIds: ['image-gen'], stepId: null, image: 'required', prompt: 'optional', cost: 20 })
    expect(form.styles.map((s) => s.id)).toEqual(['style-anime'])
    expect(form.continuesParent).toBe(false)
  })

  it('runs every step of a pipeline for the sum of their costs', () => {
    expect(formFor({ ...figme, pipeline: true }, null)).toMatchObject({ stepIds: ['image-gen', '3d-gen'], cost: 50 })
  })

  it('continues a parent task for a later step: no upload, no style, the step named', () => {
    const form = formFor(figme, '3d-gen')
    expect(form).toMatchObject({ stepIds: ['3d-gen'], stepId: '3d-gen', image: 'none', prompt: 'none', cost: 30 })
    expect(form.styles).toEqual([])
    expect(form.continuesParent).toBe(true)
  })

  it('refuses a step the tool does not have', () => {
    expect(() => formFor(figme, 'nope')).toThrow()
  })
})

describe('problemsOf', () => {
  it('asks for an image where the step needs one', () => {
    expect(problemsOf(formFor(backgroundRemove, null), {})).toEqual(['image_required'])
    expect(problemsOf(formFor(backgroundRemove, null), { imageAssetId: 'a' })).toEqual([])
  })

  it('takes a style reference in place of a required prompt', () => {
    const form = formFor(textToImage, null)
    expect(problemsOf(form, { prompt: '   ' })).toEqual(['prompt_required'])
    expect(problemsOf(form, { styleReferenceId: 's' })).toEqual([])
  })

  it('refuses a prompt longer than the server allows', () => {
    expect(problemsOf(formFor(textToImage, null), { prompt: 'x'.repeat(4001) })).toEqual(['prompt_too_long'])
  })

  it('needs the parent task for a continued step', () => {
    expect(problemsOf(formFor(figme, '3d-gen'), {})).toEqual(['parent_required'])
  })
})

describe('taskRequest', () => {
  it('sends only what the form takes', () => {
    const form = formFor(backgroundRemove, null)
    expect(taskRequest('background-remove', form, { imageAssetId: 'a', prompt: 'ignored', styleReferenceId: 'x' })).toEqual({
      toolSlug: 'background-remove',
      input: { imageAssetId: 'a' },
    })
  })

  it('names the step and the parent for a chained run', () => {
    const form = formFor(figme, '3d-gen')
    expect(taskRequest('figme', form, { parentTaskId: 'p', imageAssetId: 'a' })).toEqual({
      toolSlug: 'figme',
      stepId: '3d-gen',
      parentTaskId: 'p',
      input: {},
    })
  })
})

describe('nextStepAfter', () => {
  it('offers the next step of a chained tool, nothing after the last or for a pipeline', () => {
    expect(nextStepAfter(figme, ['image-gen'])?.id).toBe('3d-gen')
    expect(nextStepAfter(figme, ['image-gen', '3d-gen'])).toBeNull()
    expect(nextStepAfter({ ...figme, pipeline: true }, ['image-gen'])).toBeNull()
  })
})
