/**
 * Routes, all under an optional locale prefix (`/ja/tools/figme`; no prefix is English). Pages are loaded on
 * demand (each its own chunk). A page that needs a session sends the visitor to sign-in and back.
 */

import { createRouter, createWebHistory, type RouteLocationNormalized, type RouteRecordRaw } from 'vue-router'
import { i18n, setLocale } from './i18n'
import { DEFAULT_LOCALE, isLocale, LOCALES, type Locale } from './i18n/locales'
import { useSessionStore } from './stores/session'

declare module 'vue-router' {
  interface RouteMeta {
    /** A key of the message catalog, or a function of the route. */
    title?: string
    requiresAuth?: boolean
    guestOnly?: boolean
  }
}

const pages: RouteRecordRaw[] = [
  { path: '', name: 'home', component: () => import('./pages/HomePage.vue'), meta: { title: 'nav.home' } },
  { path: 'tools', name: 'tools', component: () => import('./pages/ToolsPage.vue'), meta: { title: 'tools.title' } },
  { path: 'tools/:slug', name: 'tool', component: () => import('./pages/ToolPage.vue'), props: true },
  { path: 'pricing', name: 'pricing', component: () => import('./pages/PricingPage.vue'), meta: { title: 'pricing.title' } },
  {
    path: 'pricing/:outcome(success|cancel)',
    name: 'checkout-result',
    component: () => import('./pages/CheckoutResultPage.vue'),
    props: true,
    meta: { title: 'pricing.title' },
  },
  { path: 'sign-in', name: 'sign-in', component: () => import('./pages/SignInPage.vue'), meta: { title: 'nav.signIn', guestOnly: true } },
  { path: 'sign-up', name: 'sign-up', component: () => import('./pages/SignUpPage.vue'), meta: { title: 'nav.signUp', guestOnly: true } },
  { path: 'forgot-password', name: 'forgot-password', component: () => import('./pages/ForgotPasswordPage.vue'), meta: { title: 'auth.forgotTitle' } },
  { path: 'reset-password', name: 'reset-password', component: () => import('./pages/ResetPasswordPage.vue'), meta: { title: 'auth.resetTitle' } },
  { path: 'verify-email', name: 'verify-email', component: () => import('./pages/VerifyEmailPage.vue'), meta: { title: 'auth.verifyTitle' } },
  { path: 'profile', name: 'profile', component: () => import('./pages/ProfilePage.vue'), meta: { title: 'profile.title', requiresAuth: true } },
  { path: 'creations', name: 'creations', component: () => import('./pages/CreationsPage.vue'), meta: { title: 'creations.title', requiresAuth: true } },
  { path: 'terms', name: 'terms', component: () => import('./pages/TextPage.vue'), props: { page: 'terms' }, meta: { title: 'pages.termsTitle' } },
  { path: 'privacy', name: 'privacy', component: () => import('./pages/TextPage.vue'), props: { page: 'privacy' }, meta: { title: 'pages.privacyTitle' } },
  { path: 'help', name: 'help', component: () => import('./pages/TextPage.vue'), props: { page: 'help' }, meta: { title: 'pages.helpTitle' } },
  { path: 'rate-limit', name: 'rate-limit', component: () => import('./pages/RateLimitPage.vue'), meta: { title: 'pages.rateLimitTitle' } },
  { path: ':rest(.*)*', name: 'not-found', component: () => import('./pages/NotFoundPage.vue'), meta: { title: 'pages.notFoundTitle' } },
]

const routes: RouteRecordRaw[] = [{ path: `/:locale(${LOCALES.join('|')})?`, children: pages }]

export const router = createRouter({
  history: createWebHistory(),
  routes,
  scrollBehavior: (_to, _from, saved) => saved ?? { top: 0 },
})

export function routeLocale(route: RouteLocationNormalized): Locale {
  const value = route.params.locale
  return isLocale(value) ? value : DEFAULT_LOCALE
}

router.beforeEach(async (to) => {
  await setLocale(routeLocale(to))
  if (!to.meta.requiresAuth && !to.meta.guestOnly) return true
  const session = useSessionStore()
  await session.check()
  if (to.meta.requiresAuth && !session.signedIn) {
    return { name: 'sign-in', params: { locale: to.params.locale }, query: { next: to.fullPath } }
  }
  if (to.meta.guestOnly && session.signedIn) return { name: 'home', params: { locale: to.params.locale } }
  return true
})

router.afterEach((to) => {
  const name = i18n.global.t('app.name')
  document.title = to.meta.title ? `${i18n.global.t(to.meta.title)} · ${name}` : name
})

/**
 * Loads the code of the pages the header links to (not their data), so that a click on one still opens the
 * page when the network has gone since the app loaded: the page then says what it cannot load, with a Retry,
 * instead of the click doing nothing.
 */
export async function prefetchPages(names: readonly string[] = ['home', 'tools', 'pricing', 'creations', 'profile']): Promise<void> {
  const loaders = router
    .getRoutes()
    .filter((route) => typeof route.name === 'string' && names.includes(route.name))
    .map((route) => route.components?.default)
  await Promise.allSettled(loaders.map((load) => (typeof load === 'function' ? (load as () => Promise<unknown>)() : null)))
}
