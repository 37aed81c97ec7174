import { describe, expect, it } from 'vitest'
import {
  type AdminTool,
  blankTool,
  errorsUnder,
  fieldErrors,
  fromTool,
  moved,
  newStep,
  newStyle,
  optionDefaults,
  pathOf,
  previewOf,
  price,
  type Provider,
  providerChoices,
  type StepTypeCatalog,
  toBody,
  TRANSLATED_LOCALES,
  withProvider,
  withType,
} from './toolForm'

// A part of `/api/admin/step-types` as the providers service answers it.
const CATALOG: StepTypeCatalog = {
  items: [
    {
      type: 'image-gen',
      description: '',
      providers: [
        {
          type: 'openai',
          models: ['gpt-image-1', 'gpt-image-1-mini'],
          options: [
            { name: 'size', kind: 'enum', description: '', default: '1024x1024', enum: ['1024x1024', 'auto'] },
            { name: 'quality', kind: 'enum', description: '', default: null, enum: ['low', 'high'] },
          ],
        },
        {
          type: 'local',
          models: ['default'],
          options: [
            { name: 'style', kind: 'enum', description: '', default: 'vintage', enum: ['vintage', 'sketch'] },
            { name: 'durationMs', kind: 'integer', description: '', default: 0, minimum: 0, maximum: 120000 },
          ],
        },
      ],
    },
    {
      type: 'remove-bg',
      description: '',
      providers: [
        { type: 'fal', models: ['fal-ai/imageutils/rembg'], options: [{ name: 'crop_to_bbox', kind: 'boolean', description: '' }] },
        { type: 'local', models: ['default'], options: [{ name: 'durationMs', kind: 'integer', description: '', default: 0 }] },
      ],
    },
  ],
}

function provider(name: string, type: string, active = true): Provider {
  return {
    id: `p-${name}`, scope: 'web', name, type, config: {}, is_active: active, has_api_key: true,
    created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
  }
}

const PROVIDERS = [provider('openai-main', 'openai'), provider('fal', 'fal'), provider('tripo', 'tripo')]

function storedTool(): AdminTool {
  return {
    id: 't-1', slug: 'sketch-cut', title: 'Sketch Cut', description: 'Sketch, then cut out.',
    thumbnail_asset_id: 'a-thumb', thumbnail_url: 'https://cdn/thumb.png', tool_type_id: 'tt-1',
    tool_type: { id: 'tt-1', name: 'image', display_name: 'Image' }, usage_count: 12,
    config: {
      pipeline: true,
      steps: [
        {
          id: 'sketch', name: 'Sketch', type: 'image-gen', cost: 3, timeoutSeconds: 120, prompt: 'draw it',
          provider: { name: 'local', model: 'default', options: { style: 'sketch', durationMs: 0 } },
          input: { image: 'required', prompt: 'optional' }, useStyleImage: false,
        },
        {
          id: 'cut', name: 'Cut out', type: 'remove-bg', cost: 2, timeoutSeconds: 600, prompt: null,
          provider: { name: 'fal', model: 'fal-ai/imageutils/rembg', options: {} },
          input: { image: 'required', prompt: 'none' },
        },
      ],
      styleReferences: [{ id: 'ink', name: 'Ink', prompt: 'in ink', assetId: 'a-ink', image_url: 'https://cdn/ink.png' }],
    },
    credits_cost: 5, is_active: true, is_featured: false,
    translations: { de: { title: 'Skizzenschnitt', steps: { cut: { name: 'Freistellen' } }, styleReferences: { ink: { name: 'Tusche' } } } },
    created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
  }
}

describe('a stored tool in the editor', () => {
  it('keeps the providers users may choose for a step, as the body sends them', () => {
    const tool = storedTool()
    const step = tool.config.steps[1]!
    step.choices = [
      { provider: 'fal', label: 'fal', models: ['fal-ai/imageutils/rembg'], options: {}, default: true },
      { provider: 'local', label: 'Built-in', models: [], options: { grid: { type: 'integer', min: 8, max: 64, values: null, default: null } }, default: false },
    ]
    const sent = toBody(fromTool(tool)).config.steps[1]!
    expect(sent.choices).toEqual([
      { provider: 'fal', label: 'fal', models: ['fal-ai/imageutils/rembg'], options: {} },
      { provider: 'local', label: 'Built-in', models: [], options: { grid: { type: 'integer', min: 8, max: 64 } } },
    ])
  })

  it('goes back to the API as the same tool', () => {
    const body = toBody(fromTool(storedTool()))
    expect(body).toEqual({
      slug: 'sketch-cut', title: 'Sketch Cut', description: 'Sketch, then cut out.', thumbnail_asset_id: 'a-thumb',
      tool_type_id: 'tt-1', is_active: true, is_featured: false,
      config: {
        pipeline: true,
        steps: [
          {
            id: 'sketch', name: 'Sketch', type: 'image-gen', cost: 3, timeoutSeconds: 120, prompt: 'draw it',
            provider: { name: 'local', model: 'default', options: { style: 'sketch', durationMs: 0 } },
            input: { image: 'required', prompt: 'optional' }, useStyleImage: false,
          },
          {
            id: 'cut', name: 'Cut out', type: 'remove-bg', cost: 2, timeoutSeconds: 600, prompt: null,
            provider: { name: 'fal', model: 'fal-ai/imageutils/rembg', options: {} },
            input: { image: 'required', prompt: 'none' }, useStyleImage: true,
          },
        ],
        styleReferences: [{ id: 'ink', name: 'Ink', prompt: 'in ink', assetId: 'a-ink' }],
      },
      translations: { de: { title: 'Skizzenschnitt', steps: { cut: { name: 'Freistellen' } }, styleReferences: { ink: { name: 'Tusche' } } } },
    })
  })

  it('keeps a step name translation with its step when the step id changes', () => {
    const form = fromTool(storedTool())
    form.steps[1]!.id = 'cutout'
    expect(toBody(form).translations).toEqual({
      de: { title: 'Skizzenschnitt', steps: { cutout: { name: 'Freistellen' } }, styleReferences: { ink: { name: 'Tusche' } } },
    })
  })

  it('keeps the translations of locales the editor does not offer', () => {
    const tool = storedTool()
    tool.translations['de-AT'] = { title: 'Skizzenschnitt (AT)' }
    expect(toBody(fromTool(tool)).translations?.['de-AT']).toEqual({ title: 'Skizzenschnitt (AT)' })
  })

  it('has a translation slot for every locale of the web app but English', () => {
    expect(Object.keys(fromTool(storedTool()).translations).sort()).toEqual([...TRANSLATED_LOCALES].sort())
    expect(TRANSLATED_LOCALES).not.toContain('en')
    expect(TRANSLATED_LOCALES).toContain('de')
  })
})

describe('the body sent', () => {
  it('trims texts, leaves empty options and translations out', () => {
    const form = blankTool()
    form.slug = ' my-tool '
    form.title = ' My tool '
    form.toolTypeId = 'tt-1'
    form.steps = [{ ...newStep([], CATALOG, []), name: ' One ', options: { style: '', durationMs: null, size: ' 64x64 ' } }]
    form.translations.de = { title: '  ', description: '', steps: {}, styles: {} }
    form.translations.fr = { title: 'Mon outil', description: '', steps: {}, styles: {} }
    const body = toBody(form)
    expect(body.slug).toBe('my-tool')
    expect(body.title).toBe('My tool')
    expect(body.description).toBeNull()
    expect(body.config.steps[0]?.name).toBe('One')
    expect(body.config.steps[0]?.provider.options).toEqual({ size: '64x64' })
    expect(body.translations).toEqual({ fr: { title: 'Mon outil' } })
  })
})

describe('the price', () => {
  it('is the sum of the steps’ costs', () => {
    expect(price([{ cost: 3 }, { cost: 2 }, { cost: 0 }])).toBe(5)
    expect(price([])).toBe(0)
    expect(price([{ cost: 4 }, { cost: null }])).toBe(4)
  })
})

describe('the step form from the schema', () => {
  it('starts a step with every option that has a default, and no other', () => {
    expect(optionDefaults(CATALOG.items[0]!.providers[0]!.options)).toEqual({ size: '1024x1024' })
    const step = newStep([], CATALOG, PROVIDERS)
    expect(step).toMatchObject({ id: 'step-1', type: 'image-gen', provider: 'local', model: 'default', options: { style: 'vintage', durationMs: 0 } })
  })

  it('gives a new step the first free id', () => {
    const first = newStep([], CATALOG, [])
    const second = newStep([{ ...first, id: 'step-2' }], CATALOG, [])
    expect(second.id).toBe('step-3')
    expect(newStyle([{ ...newStyle([]), id: 'style-2' }]).id).toBe('style-3')
  })

  it('offers the configured providers whose type runs the step, and local', () => {
    expect(providerChoices(CATALOG, PROVIDERS, 'image-gen').map((p) => p.name)).toEqual(['openai-main', 'local'])
    expect(providerChoices(CATALOG, PROVIDERS, 'remove-bg').map((p) => p.name)).toEqual(['fal', 'local'])
    // A step type nobody declares: nothing to offer, not even local.
    expect(providerChoices(CATALOG, PROVIDERS, '3d-gen')).toEqual([])
  })

  it('moves a step to a provider’s first model and its defaults', () => {
    const step = withProvider(newStep([], CATALOG, PROVIDERS), CATALOG, PROVIDERS, 'openai-main')
    expect(step).toMatchObject({ provider: 'openai-main', model: 'gpt-image-1', options: { size: '1024x1024' } })
  })

  it('keeps the provider when the new type runs on it, else falls back to local', () => {
    const removing = withType(newStep([], CATALOG, PROVIDERS), CATALOG, PROVIDERS, 'remove-bg')
    expect(removing.provider).toBe('local')
    const fal = withProvider(removing, CATALOG, PROVIDERS, 'fal')
    expect(withType(fal, CATALOG, PROVIDERS, 'remove-bg').provider).toBe('fal')
    expect(withType(fal, CATALOG, PROVIDERS, 'image-gen')).toMatchObject({ provider: 'local', options: { style: 'vintage' } })
  })

  it('asks for an image when a step becomes one that only works on images', () => {
    const step = { ...newStep([], CATALOG, PROVIDERS), image: 'none' as const }
    expect(withType(step, CATALOG, PROVIDERS, 'remove-bg').image).toBe('required')
    expect(withType(step, CATALOG, PROVIDERS, 'image-gen').image).toBe('none')
  })

  it('moves items up and down, and not past the ends', () => {
    expect(moved(['a', 'b', 'c'], 2, -1)).toEqual(['a', 'c', 'b'])
    expect(moved(['a', 'b', 'c'], 0, 1)).toEqual(['b', 'a', 'c'])
    expect(moved(['a', 'b'], 0, -1)).toEqual(['a', 'b'])
  })
})

describe('the preview', () => {
  it('shows a locale’s texts, English where none was given, and the price', () => {
    const form = fromTool(storedTool())
    const german = previewOf(form, 'de')
    expect(german.title).toBe('Skizzenschnitt')
    expect(german.description).toBe('Sketch, then cut out.')
    expect(german.steps.map((step) => step.name)).toEqual(['Sketch', 'Freistellen'])
    expect(german.styles.map((style) => style.name)).toEqual(['Tusche'])
    expect(german.price).toBe(5)
    expect(previewOf(form, 'en').title).toBe('Sketch Cut')
    expect(previewOf(form, 'ja').steps.map((step) => step.name)).toEqual(['Sketch', 'Cut out'])
  })

  it('shows no styles when the first step takes no prompt, as the web app does', () => {
    const form = fromTool(storedTool())
    form.steps[0]!.promptMode = 'none'
    expect(previewOf(form, 'en').styles).toEqual([])
  })
})

describe('the API’s refusals by field', () => {
  it('reads the edge’s validation errors as field paths', () => {
    const body = {
      status: 422, title: 'Unprocessable Content', detail: 'the request is invalid',
      errors: [
        { loc: ['config', 'steps', '1', 'cost'], msg: 'Input should be greater than or equal to 0', type: 'greater_than_equal' },
        { loc: ['slug'], msg: 'String should match pattern', type: 'string_pattern_mismatch' },
      ],
    }
    expect(fieldErrors(body)).toEqual({ 'config.steps[1].cost': 'Input should be greater than or equal to 0', slug: 'String should match pattern' })
  })

  it('reads a service refusal’s field, without repeating the field in its message', () => {
    const body = { status: 422, code: 'invalid_catalog_entry', field: 'config.steps[0].provider.name', detail: "config.steps[0].provider.name: no provider named 'x' is configured" }
    expect(fieldErrors(body)).toEqual({ 'config.steps[0].provider.name': "no provider named 'x' is configured" })
  })

  it('puts a taken slug beside the slug, and anything else above the form', () => {
    expect(fieldErrors({ status: 409, code: 'tool_exists', detail: 'a tool with the slug x exists already' })).toEqual({ slug: 'a tool with the slug x exists already' })
    expect(fieldErrors({ status: 404, title: 'Not Found', detail: 'no such tool' })).toEqual({ '': 'no such tool' })
    expect(fieldErrors(null)).toEqual({})
  })

  it('finds the messages under a part of the form', () => {
    const errors = { 'config.steps[0].provider.name': 'a', 'config.steps[0].provider.options': 'b', 'config.steps[1].id': 'c' }
    expect(errorsUnder(errors, 'config.steps[0].provider')).toEqual(['a', 'b'])
    expect(pathOf(['translations', 'de', 'steps', 'cut', 'name'])).toBe('translations.de.steps.cut.name')
  })
})
