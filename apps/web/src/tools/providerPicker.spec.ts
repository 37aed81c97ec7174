import { describe, expect, it } from 'vitest'
import { nextTick, ref } from 'vue'
import { allows, defaultChoice, initialOptions, optionProblems, pickRequest, type ProviderChoice, useProviderPicker } from './providerPicker'
import { formFor, taskRequest, type ToolConfig } from './stepForm'

const local: ProviderChoice = { provider: 'local', label: 'Built-in', models: ['default'], options: {}, default: true }
const tripo: ProviderChoice = {
  provider: 'tripo-main',
  label: 'Tripo',
  models: ['v2.5-20250123', 'v3.0-20250812'],
  options: {
    face_limit: { type: 'integer', min: 1000, max: 50000, default: 10000 },
    pbr: { type: 'boolean', default: true },
    texture_quality: { type: 'enum', values: ['standard', 'detailed'] },
  },
  default: false,
}

describe('the rules', () => {
  it('starts on the step’s own provider, with each option’s default', () => {
    expect(defaultChoice([tripo, local])?.provider).toBe('local')
    expect(initialOptions(tripo)).toEqual({ face_limit: 10000, pbr: true })
  })

  it('allows what the server allows and nothing else', () => {
    const faces = tripo.options.face_limit!
    expect(allows(faces, 1000)).toBe(true)
    expect(allows(faces, 999)).toBe(false)
    expect(allows(faces, 1500.5)).toBe(false)
    expect(allows(tripo.options.pbr!, 'yes')).toBe(false)
    expect(allows(tripo.options.texture_quality!, 'ultra')).toBe(false)
    expect(optionProblems(tripo, { face_limit: 60000, pbr: true, texture_quality: null })).toEqual(['face_limit'])
  })

  it('sends the chosen model and the options set, leaving unset ones to the provider', () => {
    expect(pickRequest(tripo, 'v3.0-20250812', { face_limit: 2000, pbr: false, texture_quality: null })).toEqual({
      name: 'tripo-main',
      model: 'v3.0-20250812',
      options: { face_limit: 2000, pbr: false },
    })
    expect(pickRequest(local, 'default', {})).toEqual({ name: 'local', model: 'default' })
  })
})

describe('useProviderPicker', () => {
  it('resets the model and options when another provider is chosen', async () => {
    const picker = useProviderPicker(ref([local, tripo]))
    expect(picker.request.value).toEqual({ name: 'local', model: 'default' })
    picker.choose('tripo-main')
    picker.model.value = 'v3.0-20250812'
    picker.options.value = { ...picker.options.value, face_limit: 20000 }
    await nextTick()
    expect(picker.request.value).toEqual({ name: 'tripo-main', model: 'v3.0-20250812', options: { face_limit: 20000, pbr: true } })
    picker.choose('local')
    expect(picker.request.value).toEqual({ name: 'local', model: 'default' })
  })
})

describe('the task request', () => {
  const imageTo3d: ToolConfig = {
    steps: [{ id: '3d-gen', name: '3D', type: '3d-gen', cost: 30, input: { image: 'required', prompt: 'none' }, choices: [local, tripo] }],
    styleReferences: [],
    pipeline: false,
  }

  it('carries the pick where the step offers choices', () => {
    const form = formFor(imageTo3d, null)
    expect(form.choices.map((c) => c.provider)).toEqual(['local', 'tripo-main'])
    const body = taskRequest('image-to-3d', form, { imageAssetId: 'a1', provider: { name: 'tripo-main', options: { pbr: false } } })
    expect(body.input).toEqual({ imageAssetId: 'a1', provider: { name: 'tripo-main', options: { pbr: false } } })
  })

  it('sends no pick for a step without choices', () => {
    const plain: ToolConfig = { ...imageTo3d, steps: [{ ...imageTo3d.steps[0]!, choices: [] }] }
    const body = taskRequest('image-to-3d', formFor(plain, null), { imageAssetId: 'a1', provider: { name: 'local' } })
    expect(body.input).toEqual({ imageAssetId: 'a1' })
  })
})
