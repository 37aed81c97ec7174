/**
 * Who is signed in. The session itself lives in HttpOnly cookies; this store only knows the user the
 * gateway says the cookies belong to (`GET /api/auth/me`), and the credit balance shown in the header.
 */

import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api } from '@/api/client'
import { unwrap } from '@/api/problem'
import type { components } from '@/api/schema'

export type User = components['schemas']['UserView']
export type Balance = components['schemas']['Balance']

export const useSessionStore = defineStore('session', () => {
  const user = ref<User | null>(null)
  const balance = ref<Balance | null>(null)
  const checked = ref(false)
  let checking: Promise<void> | null = null

  const signedIn = computed(() => user.value !== null)

  /** Ask the gateway once per page load (again after sign-in/out). */
  function check(): Promise<void> {
    checking ??= (async () => {
      // No CSRF cookie, no session: spare the request (and the browser's logged 401) for visitors.
      if (!document.cookie.split(';').some((part) => part.trim().startsWith('fm_csrf='))) {
        user.value = null
        checked.value = true
        return
      }
      const { data, response } = await api.GET('/api/auth/me').catch(() => ({ data: undefined, response: null }))
      user.value = response?.ok && data ? data : null
      checked.value = true
      if (user.value) await refreshBalance()
    })()
    return checking
  }

  async function refreshBalance(): Promise<void> {
    if (!user.value) return
    const { data } = await api.GET('/api/credits/balance')
    if (data) balance.value = data
  }

  async function signIn(email: string, password: string): Promise<void> {
    const result = await unwrap(api.POST('/api/auth/sign-in/email', { body: { email, password, mode: 'cookie' } }))
    user.value = result.user
    checked.value = true
    // The sign-in answer has the avatar's asset id, not yet its URL; the account answer has both.
    if (result.user.avatar_asset_id || result.user.image) await reloadUser()
    await refreshBalance()
  }

  /** The account again (`GET /api/auth/me`), with the avatar's URL. */
  async function reloadUser(): Promise<void> {
    const { data } = await api.GET('/api/auth/me')
    if (data) user.value = data
  }

  async function signUp(email: string, password: string, name: string): Promise<void> {
    const result = await unwrap(api.POST('/api/auth/sign-up/email', { body: { email, password, name, mode: 'cookie' } }))
    user.value = result.user
    checked.value = true
    await refreshBalance()
    void awaitSignUpBonus()
  }

  /**
   * The sign-up bonus is credited by an event after the account exists, usually within a few dozen
   * milliseconds of the sign-up answer: a balance read at once may still be 0. Read again a few times,
   * backing off, until the bonus shows (or it is clearly not coming: a platform without one).
   */
  async function awaitSignUpBonus(): Promise<void> {
    for (const delayMs of [150, 400, 1000, 2500]) {
      if (!user.value || (balance.value && balance.value.balance > 0)) return
      await new Promise((resolve) => setTimeout(resolve, delayMs))
      await refreshBalance()
    }
  }

  async function signOut(): Promise<void> {
    await api.POST('/api/auth/sign-out', { body: {} }).catch(() => undefined)
    forget()
  }

  /** The session ended elsewhere (expired, revoked, signed out everywhere). */
  function forget(): void {
    user.value = null
    balance.value = null
    checking = null
  }

  return { user, balance, checked, signedIn, check, refreshBalance, signIn, signUp, signOut, forget, setUser: (u: User) => (user.value = u) }
})
