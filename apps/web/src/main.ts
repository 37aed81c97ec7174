import { VueQueryPlugin } from '@tanstack/vue-query'
import { createPinia } from 'pinia'
import { createApp } from 'vue'
import App from './App.vue'
import { onSessionEnded } from './api/client'
import { i18n } from './i18n'
import { prefetchPages, router } from './router'
import { useSessionStore } from './stores/session'
import './styles.css'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
app.use(i18n)
app.use(router)
// networkMode 'always': offline, a query fails (and its page says so, with a Retry) instead of waiting
// silently with nothing on screen; coming back online still refetches what failed.
app.use(VueQueryPlugin, { queryClientConfig: { defaultOptions: { queries: { staleTime: 30_000, retry: 1, networkMode: 'always' } } } })

onSessionEnded(() => {
  useSessionStore(pinia).forget()
  const route = router.currentRoute.value
  if (route.meta.requiresAuth) void router.push({ name: 'sign-in', params: { locale: route.params.locale }, query: { next: route.fullPath, ended: '1' } })
})

app.mount('#app')

// Once the first page is up and the browser idle: the header's other pages, so they open offline too.
const whenIdle = window.requestIdleCallback ?? ((callback: () => void) => setTimeout(callback, 2000))
whenIdle(() => void prefetchPages())
