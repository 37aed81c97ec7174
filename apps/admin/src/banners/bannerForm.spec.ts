import { afterEach, describe, expect, it, vi } from 'vitest'
import { type AdminBanner, badgeColors, bannerBody, bannerProblems, blankBanner, fromBanner, isoWithOffset, scheduleState } from './bannerForm'

const stored: AdminBanner = {
  id: 'b-1',
  title: 'Spring sale',
  description: 'Everything half price',
  thumbnail_asset_id: '1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed',
  thumbnail_url: 'https://cdn/x.png',
  link: '/tools/figme',
  link_text: 'Try it',
  link_target: '_blank',
  type: 'side',
  position: 3,
  badge: 'New',
  badge_color: '#7c3aed',
  is_active: true,
  starts_at: '2026-05-01T08:00:00+00:00',
  ends_at: '2026-05-08T08:00:00+00:00',
  translations: { de: { title: 'Frühlingsangebot', badge: 'Neu' }, xx: { title: 'not a web locale' } },
  created_at: '2026-04-01T00:00:00+00:00',
  updated_at: '2026-04-01T00:00:00+00:00',
}

afterEach(() => vi.unstubAllEnvs())

describe('a banner form', () => {
  it('goes back to the API as the banner it was loaded from', () => {
    const body = bannerBody(fromBanner(stored))
    expect(body).toMatchObject({
      title: 'Spring sale',
      description: 'Everything half price',
      thumbnail_asset_id: stored.thumbnail_asset_id,
      link: '/tools/figme',
      link_text: 'Try it',
      link_target: '_blank',
      type: 'side',
      position: 3,
      badge: 'New',
      badge_color: '#7c3aed',
      is_active: true,
      translations: { de: { title: 'Frühlingsangebot', badge: 'Neu' } },
    })
    expect(Date.parse(body.starts_at ?? '')).toBe(Date.parse(stored.starts_at ?? ''))
    expect(Date.parse(body.ends_at ?? '')).toBe(Date.parse(stored.ends_at ?? ''))
  })

  it('sends empty texts as null, leaves empty translations out and trims', () => {
    const form = blankBanner()
    form.title = '  Hello '
    form.translations.fr = { title: ' Bonjour ', description: '', link_text: '', badge: '  ' }
    const body = bannerBody(form)
    expect(body).toMatchObject({ title: 'Hello', description: null, link: null, link_text: null, badge: null, badge_color: null, starts_at: null, ends_at: null, thumbnail_asset_id: null })
    expect(body.translations).toEqual({ fr: { title: 'Bonjour' } })
  })

  it('offers every web locale but English for translations', () => {
    expect(Object.keys(blankBanner().translations).sort()).toEqual(['de', 'es', 'fr', 'ja', 'ko', 'pt', 'vi', 'zh'])
  })
})

describe('a schedule picked in the admin time zone', () => {
  it('is sent with that zone offset and means the same instant', () => {
    vi.stubEnv('TZ', 'Asia/Shanghai')
    const picked = new Date(2026, 4, 1, 10, 30).getTime() // 10:30 on the admin's clock
    expect(isoWithOffset(picked)).toBe('2026-05-01T10:30:00+08:00')
    expect(Date.parse(isoWithOffset(picked))).toBe(picked)
  })

  it('keeps a negative offset and half hours', () => {
    vi.stubEnv('TZ', 'America/St_Johns')
    const picked = new Date(2026, 0, 15, 23, 5).getTime()
    expect(isoWithOffset(picked)).toBe('2026-01-15T23:05:00-03:30')
    expect(Date.parse(isoWithOffset(picked))).toBe(picked)
  })
})

describe('a banner schedule state', () => {
  const at = (iso: string) => Date.parse(iso)
  const banner = { is_active: true, starts_at: '2026-05-01T08:00:00Z', ends_at: '2026-05-08T08:00:00Z' }

  it('is scheduled before it starts, live inside, ended from its end on', () => {
    expect(scheduleState(banner, at('2026-05-01T07:59:59Z'))).toBe('scheduled')
    expect(scheduleState(banner, at('2026-05-01T08:00:00Z'))).toBe('live')
    expect(scheduleState(banner, at('2026-05-08T07:59:59Z'))).toBe('live')
    expect(scheduleState(banner, at('2026-05-08T08:00:00Z'))).toBe('ended')
  })

  it('treats a missing bound as open and a switched-off banner in its window as off', () => {
    expect(scheduleState({ is_active: true }, at('2030-01-01T00:00:00Z'))).toBe('live')
    expect(scheduleState({ is_active: true, starts_at: null, ends_at: '2026-01-01T00:00:00Z' }, at('2026-06-01T00:00:00Z'))).toBe('ended')
    expect(scheduleState({ ...banner, is_active: false }, at('2026-05-02T00:00:00Z'))).toBe('off')
    expect(scheduleState({ ...banner, is_active: false }, at('2026-04-02T00:00:00Z'))).toBe('scheduled')
  })
})

describe('the checks before saving', () => {
  it('need a title, a link the server takes, a colour it takes and an end after the start', () => {
    const form = blankBanner()
    form.link = 'javascript:alert(1)'
    form.badgeColor = 'not a colour'
    form.startsAt = 2000
    form.endsAt = 1000
    expect(bannerProblems(form)).toEqual({ title: 'titleRequired', link: 'linkInvalid', badge_color: 'colorInvalid', ends_at: 'endsBeforeStart' })
  })

  it('take https URLs, site paths and colour tokens', () => {
    const form = blankBanner()
    form.title = 'Ok'
    for (const link of ['https://example.com/a?b=1', 'http://localhost:8000/x', '/tools/figme', '']) {
      form.link = link
      expect(bannerProblems(form), link).toEqual({})
    }
    for (const link of ['//evil.example', 'ftp://x', '/a b', 'https://ex ample.com']) {
      form.link = link
      expect(bannerProblems(form).link, link).toBe('linkInvalid')
    }
    form.link = ''
    for (const color of ['#fff', '#7c3aed', 'primary', 'red-500']) {
      form.badgeColor = color
      expect(bannerProblems(form), color).toEqual({})
    }
  })
})

describe('a badge in the colour an admin chose', () => {
  it('takes the text that reads best on it', () => {
    expect(badgeColors('#ef4444')).toEqual({ color: '#ef4444', textColor: '#000000' })
    expect(badgeColors('#7c3aed')).toEqual({ color: '#7c3aed', textColor: '#ffffff' })
    expect(badgeColors('#FFD700')?.textColor).toBe('#000000')
    expect(badgeColors('#000')).toEqual({ color: '#000000', textColor: '#ffffff' })
  })

  it('leaves anything but a hex colour to the tag', () => {
    expect(badgeColors('red')).toBeUndefined()
    expect(badgeColors('#12345')).toBeUndefined()
    expect(badgeColors(null)).toBeUndefined()
  })
})
