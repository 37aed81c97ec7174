import { VueQueryPlugin } from '@tanstack/vue-query'
import { createPinia } from 'pinia'
import { createApp } from 'vue'
import App from './App.vue'
import { onSessionEnded } from './api'
import { i18n, setLocale, storedLocale } from './i18n'
import { router } from './router'
import { useSessionStore } from './stores/session'
import './styles.css'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
app.use(i18n)
app.use(router)
app.use(VueQueryPlugin, { queryClientConfig: { defaultOptions: { queries: { staleTime: 10_000, retry: 1 } } } })

onSessionEnded(() => {
  useSessionStore(pinia).forget()
  void router.push({ name: 'sign-in', query: { next: router.currentRoute.value.fullPath } })
})

void setLocale(storedLocale()).then(() => app.mount('#app'))
