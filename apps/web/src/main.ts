import { VueQueryPlugin } from '@tanstack/vue-query'
import { createPinia } from 'pinia'
import { createApp } from 'vue'
import App from './App.vue'
import { onSessionEnded } from './api/client'
import { i18n } from './i18n'
import { router } from './router'
import { useSessionStore } from './stores/session'
import './styles.css'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
app.use(i18n)
app.use(router)
app.use(VueQueryPlugin, { queryClientConfig: { defaultOptions: { queries: { staleTime: 30_000, retry: 1 } } } })

onSessionEnded(() => {
  useSessionStore(pinia).forget()
  const route = router.currentRoute.value
  if (route.meta.requiresAuth) void router.push({ name: 'sign-in', params: { locale: route.params.locale }, query: { next: route.fullPath, ended: '1' } })
})

app.mount('#app')
