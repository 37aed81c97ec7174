/**
 * Who is signed in, as the gateway says (`GET /api/auth/me`); the session itself is HttpOnly cookies. The
 * role only chooses what the app offers: the server refuses every admin call of a non-admin by itself.
 */

import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, type components, unwrap } from '@/api'

export type User = components['schemas']['UserView']

export const useSessionStore = defineStore('session', () => {
  const user = ref<User | null>(null)
  const checked = ref(false)
  let checking: Promise<void> | null = null

  const isStaff = computed(() => user.value?.role === 'admin' || user.value?.role === 'super_admin')
  const isSuperAdmin = computed(() => user.value?.role === 'super_admin')

  function check(): Promise<void> {
    checking ??= (async () => {
      const { data, response } = await api.GET('/api/auth/me').catch(() => ({ data: undefined, response: null }))
      user.value = response?.ok && data ? data : null
      checked.value = true
    })()
    return checking
  }

  async function signIn(email: string, password: string): Promise<void> {
    const result = await unwrap(api.POST('/api/auth/sign-in/email', { body: { email, password, mode: 'cookie' } }))
    user.value = result.user
    checked.value = true
  }

  async function signOut(): Promise<void> {
    await api.POST('/api/auth/sign-out', { body: {} }).catch(() => undefined)
    forget()
  }

  function forget(): void {
    user.value = null
    checking = null
  }

  return { user, checked, isStaff, isSuperAdmin, check, signIn, signOut, forget }
})
