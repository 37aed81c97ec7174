import { describe, expect, it } from 'vitest'
import { deviceName } from './deviceName'

describe('deviceName', () => {
  it('names the browser and the system of a desktop browser', () => {
    const chrome = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'
    expect(deviceName(chrome)).toBe('Chrome · Windows')
  })

  it('tells Edge and Safari apart from Chrome, whose token they also carry', () => {
    expect(deviceName('Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0')).toBe('Edge · Windows')
    expect(deviceName('Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Version/18.0 Mobile/15E148 Safari/604.1')).toBe('Safari · iOS')
  })

  it('shows an API client by its product token and nothing for no agent', () => {
    expect(deviceName('Python/3.11 aiohttp/3.14.5')).toBe('Python/3.11')
    expect(deviceName(null)).toBeNull()
  })
})
