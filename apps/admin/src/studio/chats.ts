/**
 * The studio's chat list and chat form, pure: which chats a project choice lists (the API reads an empty
 * `project` as "not in a project"), and what a new or edited chat sends (an edit sends only what changed;
 * `project: null` takes a chat out of its project).
 */

import type { components } from '@/api'

export type Chat = components['schemas']['Chat']
export type ChatCreate = components['schemas']['ChatCreate']
export type ChatUpdate = components['schemas']['ChatUpdate']

/** Every chat, the chats in no project, or one project's. */
export type ProjectFilter = { kind: 'all' } | { kind: 'none' } | { kind: 'project'; name: string }

/** The list's query; `everyone` (super admins) lists every admin's chats, not only mine. */
export function chatQuery(filter: ProjectFilter, archived: boolean, everyone = false): { project?: string; archived: boolean; all?: boolean } {
  const scope = everyone ? { archived, all: true } : { archived }
  if (filter.kind === 'all') return scope
  return { ...scope, project: filter.kind === 'none' ? '' : filter.name }
}

/** Whether `adminId` may write to the chat (post, rename, archive, delete): only its own admin may. */
export function writableBy(chat: Chat, adminId: string | null | undefined): boolean {
  return adminId !== null && adminId !== undefined && chat.admin_id === adminId
}

export function sameFilter(a: ProjectFilter, b: ProjectFilter): boolean {
  return a.kind === b.kind && (a.kind !== 'project' || (b.kind === 'project' && a.name === b.name))
}

export interface ChatForm {
  title: string
  /** A project's name as typed (blank: no project). */
  project: string
  provider: string | null
  model: string | null
  systemPrompt: string
  store: boolean
}

/** A new chat's form, in the project being looked at. */
export function blankChat(filter: ProjectFilter, provider: string | null = 'local', model: string | null = 'local-chat'): ChatForm {
  return { title: '', project: filter.kind === 'project' ? filter.name : '', provider, model, systemPrompt: '', store: true }
}

export function fromChat(chat: Chat): ChatForm {
  return {
    title: chat.title,
    project: chat.project ?? '',
    provider: chat.provider,
    model: chat.model,
    systemPrompt: chat.system_prompt ?? '',
    store: chat.store,
  }
}

function orNull(value: string): string | null {
  const trimmed = value.trim()
  return trimmed === '' ? null : trimmed
}

export function chatCreate(form: ChatForm): ChatCreate {
  const body: ChatCreate = { title: orNull(form.title), project: orNull(form.project), system_prompt: orNull(form.systemPrompt), store: form.store }
  if (form.provider) body.provider = form.provider
  if (form.model) body.model = form.model
  return body
}

/** What an edit changes (an empty object when nothing did); a blank title keeps the old one. */
export function chatUpdate(chat: Chat, form: ChatForm): ChatUpdate {
  const changes: ChatUpdate = {}
  const title = orNull(form.title)
  if (title !== null && title !== chat.title) changes.title = title
  const project = orNull(form.project)
  if (project !== (chat.project ?? null)) changes.project = project
  if (form.provider && form.provider !== chat.provider) changes.provider = form.provider
  if (form.model && form.model !== chat.model) changes.model = form.model
  const prompt = orNull(form.systemPrompt)
  if (prompt !== (chat.system_prompt ?? null)) changes.system_prompt = prompt
  return changes
}
