import { describe, expect, it } from 'vitest'
import { blankProvider, createBody, fromProvider, healthOf, limitsSummary, movesBaseUrl, type Provider, providerProblems, updateBody } from './providerForm'

const stored: Provider = {
  id: 'p-1',
  scope: 'web',
  name: 'openai',
  display_name: 'OpenAI',
  type: 'openai',
  base_url: 'https://api.openai.com/v1',
  config: { rateLimit: { maxConcurrency: 2, maxPerMinute: 60, retryOn429: true }, models: ['gpt-image-1'] },
  is_active: true,
  is_healthy: true,
  health_checked_at: '2026-05-01T08:00:00Z',
  has_api_key: true,
  api_key_hint: '••••1234',
  created_at: '2026-04-01T00:00:00Z',
  updated_at: '2026-04-01T00:00:00Z',
}

describe('the write-only key', () => {
  it('is never in the form of a stored provider, and an edit without replacing it sends none', () => {
    const form = fromProvider(stored)
    expect(form.newKey).toBe('')
    expect(form.replacingKey).toBe(false)
    form.displayName = 'OpenAI (main)'
    expect(updateBody(form)).not.toHaveProperty('api_key')
  })

  it('is not sent when typed and the replacement then cancelled', () => {
    const form = fromProvider(stored)
    form.replacingKey = true
    form.newKey = 'sk-typed-but-cancelled'
    form.replacingKey = false
    expect(updateBody(form)).not.toHaveProperty('api_key')
  })

  it('is sent, trimmed, when the admin replaces it', () => {
    const form = fromProvider(stored)
    form.replacingKey = true
    form.newKey = '  sk-new-key-5678 '
    expect(updateBody(form).api_key).toBe('sk-new-key-5678')
  })

  it('is needed to replace one and to create a remote provider, not a local one', () => {
    const form = fromProvider(stored)
    form.replacingKey = true
    expect(providerProblems(form, false).api_key).toBe('keyRequired')
    const local = { ...blankProvider(), name: 'local-2', type: 'local' as const }
    expect(providerProblems(local, true)).toEqual({})
    expect(createBody(local)).not.toHaveProperty('api_key')
    expect(createBody(local).base_url).toBeNull()
  })
})

describe('the rate limits', () => {
  it('come back as they were stored, with the other config keys untouched', () => {
    expect(updateBody(fromProvider(stored)).config).toEqual({ rateLimit: { maxConcurrency: 2, maxPerMinute: 60 }, models: ['gpt-image-1'] })
  })

  it('send only the fields set, and no rateLimit at all when none is', () => {
    const form = fromProvider(stored)
    form.rateLimit = { maxConcurrency: null, maxPerMinute: null, maxPerDay: 1000, retryOn429: false, maxRetries: 0, baseBackoffMs: 250 }
    expect(updateBody(form).config).toEqual({
      models: ['gpt-image-1'],
      rateLimit: { maxPerDay: 1000, retryOn429: false, maxRetries: 0, baseBackoffMs: 250 },
    })
    form.rateLimit = { maxConcurrency: null, maxPerMinute: null, maxPerDay: null, retryOn429: true, maxRetries: null, baseBackoffMs: null }
    expect(updateBody(form).config).toEqual({ models: ['gpt-image-1'] })
  })

  it('are refused as the limiter would: limits and backoff at least 1, retries at least 0, whole numbers', () => {
    const form = fromProvider(stored)
    form.rateLimit = { maxConcurrency: 0, maxPerMinute: 1.5, maxPerDay: 1, retryOn429: true, maxRetries: -1, baseBackoffMs: 0 }
    expect(providerProblems(form, false)).toEqual({
      'rateLimit.maxConcurrency': 'limitInvalid',
      'rateLimit.maxPerMinute': 'limitInvalid',
      'rateLimit.maxRetries': 'retriesInvalid',
      'rateLimit.baseBackoffMs': 'backoffInvalid',
    })
  })

  it('are summed up for the list', () => {
    expect(limitsSummary(stored.config)).toEqual({ concurrency: 2, perMinute: 60, perDay: null })
    expect(limitsSummary({ rateLimit: { retryOn429: false } })).toBeNull()
  })
})

describe('a new provider', () => {
  it('is created with its name, type, base URL and key', () => {
    const form = { ...blankProvider(), name: ' fal-main ', type: 'fal' as const, baseUrl: 'https://queue.fal.run/', newKey: 'fal-key-0000' }
    expect(createBody(form)).toEqual({
      name: 'fal-main',
      type: 'fal',
      display_name: null,
      base_url: 'https://queue.fal.run/',
      config: {},
      is_active: true,
      api_key: 'fal-key-0000',
    })
  })

  it('needs a name the service takes and an http(s) base URL', () => {
    const form = { ...blankProvider(), name: 'Open AI', baseUrl: 'ftp://x', newKey: 'k' }
    expect(providerProblems(form, true)).toEqual({ name: 'nameInvalid', base_url: 'baseUrlInvalid' })
    expect(providerProblems({ ...form, name: 'ok', baseUrl: '' }, true)).toEqual({ base_url: 'baseUrlRequired' })
  })
})

describe('a provider health', () => {
  it('is unknown until checked', () => {
    expect(healthOf({ is_healthy: null })).toBe('unknown')
    expect(healthOf({})).toBe('unknown')
    expect(healthOf({ is_healthy: false })).toBe('unhealthy')
    expect(healthOf(stored)).toBe('healthy')
  })
})

describe('the write-only secret of a two-part credential', () => {
  const hunyuan = { ...stored, type: 'hunyuan', has_api_secret: true, api_secret_hint: '••••wxyz' } as Provider

  it('is created with the key for Hunyuan, and needed', () => {
    const form = { ...blankProvider(), name: 'hunyuan', type: 'hunyuan' as const, baseUrl: 'https://ai3d.tencentcloudapi.com', newKey: 'AKIDid', newSecret: ' the-secret ' }
    expect(createBody(form)).toMatchObject({ type: 'hunyuan', api_key: 'AKIDid', api_secret: 'the-secret' })
    expect(providerProblems({ ...form, newSecret: '' }, true).api_secret).toBe('secretRequired')
  })

  it('is never sent by a type that has none', () => {
    const form = { ...blankProvider(), name: 'fal', type: 'fal' as const, baseUrl: 'https://queue.fal.run', newKey: 'k', newSecret: 'stray' }
    expect(createBody(form)).not.toHaveProperty('api_secret')
    expect(providerProblems({ ...form, newSecret: '' }, true).api_secret).toBeUndefined()
  })

  it('is kept on an edit unless the admin replaces it', () => {
    const form = fromProvider(hunyuan)
    expect(form.newSecret).toBe('')
    expect(updateBody(form)).not.toHaveProperty('api_secret')
    expect(updateBody({ ...form, replacingSecret: true, newSecret: 'new-secret' })).toMatchObject({ api_secret: 'new-secret' })
    expect(providerProblems({ ...form, replacingSecret: true }, false).api_secret).toBe('secretRequired')
  })
})

describe('a stored provider moved to another address', () => {
  it('needs its key typed again, since a stored key only goes where it was entered', () => {
    const moved = { ...fromProvider(stored), baseUrl: 'https://collector.example' }
    expect(movesBaseUrl(moved, stored.base_url)).toBe(true)
    expect(providerProblems(moved, false, stored.base_url).api_key).toBe('keyAgainForNewUrl')
    expect(providerProblems({ ...moved, replacingKey: true }, false, stored.base_url).api_key).toBe('keyAgainForNewUrl')
    const retyped = { ...moved, replacingKey: true, newKey: 'sk-new' }
    expect(providerProblems(retyped, false, stored.base_url).api_key).toBeUndefined()
    expect(updateBody(retyped)).toMatchObject({ base_url: 'https://collector.example', api_key: 'sk-new' })
  })

  it('is not moved by a trailing slash, nor by an edit of anything else', () => {
    const same = { ...fromProvider(stored), baseUrl: 'https://api.openai.com/v1/ ', displayName: 'Main' }
    expect(movesBaseUrl(same, stored.base_url)).toBe(false)
    expect(providerProblems(same, false, stored.base_url)).toEqual({})
  })

  it('needs the secret of a two-part credential too', () => {
    const hunyuan = { ...stored, type: 'hunyuan', has_api_secret: true } as Provider
    const moved = { ...fromProvider(hunyuan), baseUrl: 'https://elsewhere.example', replacingKey: true, newKey: 'AKID' }
    expect(providerProblems(moved, false, hunyuan.base_url).api_secret).toBe('secretAgainForNewUrl')
  })
})
