/** Light or dark, remembered on this device (a preference, not a secret: localStorage is fine for it). */

import { defineStore } from 'pinia'
import { ref, watch } from 'vue'

const KEY = 'funmagic.theme'

export const useThemeStore = defineStore('theme', () => {
  const stored = localStorage.getItem(KEY)
  const systemDark = window.matchMedia?.('(prefers-color-scheme: dark)').matches ?? false
  const dark = ref(stored === null ? systemDark : stored === 'dark')
  watch(
    dark,
    (value) => {
      localStorage.setItem(KEY, value ? 'dark' : 'light')
      document.documentElement.dataset.theme = value ? 'dark' : 'light'
    },
    { immediate: true },
  )
  return { dark, toggle: () => (dark.value = !dark.value) }
})
