/**
 * The signed-in user's own account: their profile (name, avatar) and their password. The avatar goes up
 * through the platform's presigned upload with storage's `avatar` module, then `PATCH /api/auth/me` keeps its
 * asset id; the gateway answers the account with `avatar_url`, which the session store (and so the header)
 * shows.
 */

import { ref } from 'vue'
import { api } from '@/api/client'
import { unwrap } from '@/api/problem'
import type { components } from '@/api/schema'
import { USER_UPLOADS, uploadApi } from '@/composables/useUploader'
import { useSessionStore } from '@/stores/session'
import { type UploadedAsset, type UploadLimits, uploadFile } from '@/upload/upload'

export type ProfileUpdate = components['schemas']['ProfileUpdateRequest']

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
