/** Whether a CSS media query matches now, kept current (the studio's side panel becomes a drawer on phones). */

import { onScopeDispose, type Ref, ref } from 'vue'

export function useMediaQuery(query: string): Ref<boolean> {
  const list = typeof window.matchMedia === 'function' ? window.matchMedia(query) : null
  const matches = ref(list?.matches ?? false)
  const changed = (event: MediaQueryListEvent) => (matches.value = event.matches)
  list?.addEventListener('change', changed)
  onScopeDispose(() => list?.removeEventListener('change', changed))
  return matches
}
