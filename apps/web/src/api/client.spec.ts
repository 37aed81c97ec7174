import { describe, expect, it } from 'vitest'
import { cookieChanges, csrfToken, renewable } from './client'

describe('csrfToken', () => {
  it('reads the fm_csrf cookie among others', () => {
    expect(csrfToken('a=1; fm_csrf=abc%3D; b=2')).toBe('abc=')
    expect(csrfToken('a=1')).toBeNull()
  })
})

describe('cookieChanges (a refresh another tab superseded waits for its cookies)', () => {
  it('is true once the CSRF cookie differs from the one the refresh was sent with', async () => {
    let looks = 0
    const cookies = () => (++looks < 3 ? 'fm_csrf=old' : 'fm_csrf=new')

    expect(await cookieChanges('old', 2000, cookies)).toBe(true)
    expect(looks).toBe(3)
  })

  it('is true at once when the other tab’s cookies came first', async () => {
    expect(await cookieChanges('old', 0, () => 'fm_csrf=new')).toBe(true)
  })

  it('is false when the cookie stays the same for the whole wait', async () => {
    expect(await cookieChanges('old', 120, () => 'fm_csrf=old')).toBe(false)
  })
})

describe('renewable (which 401s mean the access token expired)', () => {
  it('renews for the routes that need a session, the account’s own included', () => {
    for (const path of ['/api/auth/me', '/api/auth/sessions', '/api/auth/sign-out-everywhere', '/api/tasks', '/api/credits/balance']) {
      expect(renewable(path), path).toBe(true)
    }
  })

  it('does not for the routes that take no session, whose 401 is their answer', () => {
    for (const path of ['/api/auth/refresh', '/api/auth/sign-in/email', '/api/auth/sign-up/email', '/api/auth/sign-out', '/api/auth/oauth/github/start', '/api/auth/reset-password']) {
      expect(renewable(path), path).toBe(false)
    }
  })
})
