import { describe, expect, it } from 'vitest'
import { type AdminToolType, blankToolType, fromToolType, toolTypeBody } from './toolTypeForm'

const STORED: AdminToolType = {
  id: 'tt-1', name: '3d', display_name: '3D', description: 'Models.', icon: 'cube', color: '#f59e0b', sort_order: 20,
  is_active: true, translations: { de: { display_name: '3D', description: 'Modelle.' }, zh: { display_name: '3D' } },
  tools_count: 3, active_tools_count: 2, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
}

describe('a tool type in its editor', () => {
  it('goes back to the API as the same tool type', () => {
    expect(toolTypeBody(fromToolType(STORED))).toEqual({
      name: '3d', display_name: '3D', description: 'Models.', icon: 'cube', color: '#f59e0b', sort_order: 20, is_active: true,
      translations: { de: { display_name: '3D', description: 'Modelle.' }, zh: { display_name: '3D' } },
    })
  })

  it('sends empty texts as nothing', () => {
    const form = blankToolType()
    form.name = ' video '
    form.displayName = 'Video'
    form.translations.fr = { display_name: ' Vidéo ', description: ' ' }
    expect(toolTypeBody(form)).toEqual({
      name: 'video', display_name: 'Video', description: null, icon: null, color: null, sort_order: 0, is_active: true,
      translations: { fr: { display_name: 'Vidéo' } },
    })
  })
})
