import { describe, expect, it } from 'vitest'
import { blankChat, type Chat, chatCreate, chatQuery, chatUpdate, fromChat, sameFilter, writableBy } from './chats'

const chat: Chat = {
  id: 'c1',
  admin_id: 'a1',
  title: 'Foxes',
  project: 'Animals',
  provider: 'local',
  model: 'local-chat',
  system_prompt: null,
  store: true,
  created_at: '2025-01-01T00:00:00Z',
  updated_at: '2025-01-01T00:00:00Z',
}

describe('the studio chat list', () => {
  it('asks for every chat, the chats in no project, or one project', () => {
    expect(chatQuery({ kind: 'all' }, false)).toEqual({ archived: false })
    expect(chatQuery({ kind: 'none' }, false)).toEqual({ project: '', archived: false })
    expect(chatQuery({ kind: 'project', name: 'Animals' }, true)).toEqual({ project: 'Animals', archived: true })
    expect(chatQuery({ kind: 'none' }, false, true)).toEqual({ project: '', archived: false, all: true })
    expect(sameFilter({ kind: 'project', name: 'a' }, { kind: 'project', name: 'b' })).toBe(false)
    expect(sameFilter({ kind: 'none' }, { kind: 'none' })).toBe(true)
  })
})

describe('the chat form', () => {
  it('starts a chat in the project being looked at, blanks left to the API', () => {
    const form = blankChat({ kind: 'project', name: 'Animals' })
    expect(chatCreate(form)).toEqual({ title: null, project: 'Animals', provider: 'local', model: 'local-chat', system_prompt: null, store: true })
    expect(chatCreate({ ...form, title: ' Foxes ', project: ' ' }).project).toBeNull()
  })

  it('sends only what an edit changed', () => {
    expect(chatUpdate(chat, fromChat(chat))).toEqual({})
    expect(chatUpdate(chat, { ...fromChat(chat), title: 'Wolves', project: '' })).toEqual({ title: 'Wolves', project: null })
    expect(chatUpdate(chat, { ...fromChat(chat), title: ' ', systemPrompt: 'Be brief.' })).toEqual({ system_prompt: 'Be brief.' })
  })
})

describe('who writes to a chat', () => {
  it('is its own admin only; a super admin reads another admin\'s chat without writing to it', () => {
    expect(writableBy(chat, 'a1')).toBe(true)
    expect(writableBy(chat, 'someone-else')).toBe(false)
    expect(writableBy(chat, null)).toBe(false)
  })
})
