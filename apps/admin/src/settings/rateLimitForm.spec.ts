import { describe, expect, it } from 'vitest'
import { fromSettings, newTier, type RateLimitSettings, settingsBody, settingsProblems } from './rateLimitForm'

const served: RateLimitSettings = {
  global_api: { limit: 500, window_seconds: 60 },
  user_api: { limit: 200, window_seconds: 60 },
  task_creation: { limit: 10, window_seconds: 60 },
  upload: { limit: 20, window_seconds: 60 },
  auth_session: { limit: 60, window_seconds: 60 },
  auth_action: { limit: 10, window_seconds: 300 },
  tiers: [
    { name: 'free', min_purchased: 0, multiplier: 1 },
    { name: 'basic', min_purchased: 1, multiplier: 2 },
    { name: 'premium', min_purchased: 1000, multiplier: 3 },
  ],
}

describe('the rate-limit settings form', () => {
  it('goes back to the gateway as the settings it was loaded from', () => {
    expect(settingsBody(fromSettings(served))).toEqual(served)
    expect(settingsProblems(fromSettings(served))).toEqual({})
  })

  it('sends every category and trimmed tier names', () => {
    const form = fromSettings(served)
    form.limits.upload = { limit: 40, windowSeconds: 120 }
    form.tiers[0]!.name = '  starter '
    const body = settingsBody(form)
    expect(body.upload).toEqual({ limit: 40, window_seconds: 120 })
    expect(body.tiers?.[0]?.name).toBe('starter')
    expect(Object.keys(body).sort()).toEqual(['auth_action', 'auth_session', 'global_api', 'task_creation', 'tiers', 'upload', 'user_api'])
  })

  it('refuses repeated tier names and thresholds, naming the later one', () => {
    const form = fromSettings(served)
    form.tiers[2]!.name = 'basic '
    form.tiers[1]!.minPurchased = 0
    expect(settingsProblems(form)).toEqual({ 'tiers[2].name': 'nameRepeated', 'tiers[1].min_purchased': 'thresholdRepeated' })
  })

  it('refuses what the gateway refuses: empty, fractional and out-of-range numbers, empty names', () => {
    const form = fromSettings(served)
    form.limits.global_api = { limit: null, windowSeconds: 86_401 }
    form.limits.user_api = { limit: 1.5, windowSeconds: 0 }
    form.tiers[0]!.name = ' '
    form.tiers[0]!.multiplier = 101
    expect(settingsProblems(form)).toEqual({
      'global_api.limit': 'required',
      'global_api.window_seconds': 'outOfRange',
      'user_api.limit': 'wholeNumber',
      'user_api.window_seconds': 'outOfRange',
      'tiers[0].name': 'nameRequired',
      'tiers[0].multiplier': 'outOfRange',
    })
  })

  it('adds a tier above the highest threshold so it is not a repeat', () => {
    const form = fromSettings(served)
    const tier = newTier(form.tiers)
    expect(tier.minPurchased).toBe(1001)
    form.tiers.push({ ...tier, name: 'gold' })
    expect(settingsProblems(form)).toEqual({})
    expect(newTier([]).minPurchased).toBe(0)
  })
})
