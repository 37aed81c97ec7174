/**
 * The signed-in user's own account: their profile (name, avatar), their password and their signed-in
 * devices. The avatar goes up through the platform's presigned upload with storage's `avatar` module, then
 * `PATCH /api/auth/me` keeps its asset id; the gateway answers the account with `avatar_url`, which the
 * session store (and so the header) shows.
 */

import { useInfiniteQuery, useQueryClient } from '@tanstack/vue-query'
import { computed, ref } from 'vue'
import { api } from '@/api/client'
import { unwrap } from '@/api/problem'
import type { components } from '@/api/schema'
import { USER_UPLOADS, uploadApi } from '@/composables/useUploader'
import { useSessionStore } from '@/stores/session'
import { type UploadedAsset, type UploadLimits, uploadFile } from '@/upload/upload'

export type ProfileUpdate = components['schemas']['ProfileUpdateRequest']
export type DeviceSession = components['schemas']['SessionView']

/** Storage's limits for the `avatar` module (`UPLOAD_MODULE_MAX_BYTES`: avatar=5 MB). */
export const AVATAR_UPLOADS: UploadLimits = { types: USER_UPLOADS.types, maxBytes: 5 * 1024 * 1024 }
export const AVATAR_MODULE = 'avatar'

/** Uploads one avatar picture, with progress (0–100, or null when no upload runs). */
export function useAvatarUpload() {
  const percent = ref<number | null>(null)
  async function upload(file: File): Promise<UploadedAsset> {
    percent.value = 0
    try {
      return await uploadFile(uploadApi, file, {
        module: AVATAR_MODULE,
        limits: AVATAR_UPLOADS,
        onProgress: (progress) => (percent.value = progress.percent),
      })
    } finally {
      percent.value = null
    }
  }
  return { percent, upload }
}

/** Saves profile changes and puts the answer (with its `avatar_url`) in the session store. */
export async function saveProfile(update: ProfileUpdate): Promise<void> {
  const user = await unwrap(api.PATCH('/api/auth/me', { body: update }))
  useSessionStore().setUser(user)
}

/** Changes the password; answers how many other sessions were signed out. */
export async function changePassword(currentPassword: string, newPassword: string): Promise<number> {
  const result = await unwrap(
    api.POST('/api/auth/change-password', { body: { current_password: currentPassword, new_password: newPassword } }),
  )
  return result.revoked_sessions
}

/** The query of my sessions: whatever ends some of them (a password change) refreshes it by this key. */
export const SESSIONS_KEY = ['sessions']
/** Devices listed per page ("Load more" asks for the next). */
export const SESSIONS_PAGE_SIZE = 10

/**
 * My signed-in devices, newest first, a page at a time, and signing one of them out. After a revoke the
 * pages loaded so far are fetched again from the first, each after the cursor of the fresh page before it,
 * so the devices after the revoked one move up without a gap or a repeat.
 */
export function useSessions() {
  const queries = useQueryClient()
  const sessions = useInfiniteQuery({
    queryKey: SESSIONS_KEY,
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/auth/sessions', {
          params: { query: { limit: SESSIONS_PAGE_SIZE, ...(pageParam ? { cursor: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (page) => page.next_cursor ?? null,
  })
  const items = computed(() => sessions.data.value?.pages.flatMap((page) => page.items) ?? [])

  /** Signs the device out. The list is fetched again even when that failed (the device may be gone already);
   * the failure is thrown on for the page to show. */
  async function revoke(id: string): Promise<void> {
    try {
      await unwrap(api.DELETE('/api/auth/sessions/{session_id}', { params: { path: { session_id: id } } }))
    } finally {
      await queries.invalidateQueries({ queryKey: SESSIONS_KEY })
    }
  }

  return { sessions, items, revoke }
}
