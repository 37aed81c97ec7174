/**
 * The admin app's pages. Every page but sign-in and not-authorised needs an admin or super admin; the guard
 * only spares people a page that would fail, since the gateway refuses each admin call on its own.
 */

import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { useSessionStore } from './stores/session'

declare module 'vue-router' {
  interface RouteMeta {
    public?: boolean
    /** Only a super admin may open it (the studio's providers); the API refuses everyone else too. */
    superAdmin?: boolean
  }
}

const routes: RouteRecordRaw[] = [
  { path: '/', name: 'overview', component: () => import('./pages/OverviewPage.vue') },
  { path: '/sign-in', name: 'sign-in', component: () => import('./pages/SignInPage.vue'), meta: { public: true } },
  { path: '/not-authorised', name: 'not-authorised', component: () => import('./pages/NotAuthorisedPage.vue'), meta: { public: true } },
  { path: '/users', name: 'users', component: () => import('./pages/UsersPage.vue') },
  { path: '/users/:id', name: 'user', component: () => import('./pages/UserPage.vue'), props: true },
  { path: '/tasks', name: 'tasks', component: () => import('./pages/TasksPage.vue') },
  { path: '/tasks/:id', name: 'task', component: () => import('./pages/TaskPage.vue'), props: true },
  { path: '/tools', name: 'tools', component: () => import('./pages/ToolsPage.vue') },
  { path: '/tools/new', name: 'tool-new', component: () => import('./pages/ToolEditorPage.vue') },
  { path: '/tools/:id', name: 'tool', component: () => import('./pages/ToolEditorPage.vue'), props: true },
  { path: '/tool-types', name: 'tool-types', component: () => import('./pages/ToolTypesPage.vue') },
  { path: '/queue', name: 'queue', component: () => import('./pages/QueuePage.vue') },
  { path: '/queue/dead-letters/:topic', name: 'dead-letters', component: () => import('./pages/DeadLettersPage.vue'), props: true },
  { path: '/banners', name: 'banners', component: () => import('./pages/BannersPage.vue') },
  { path: '/banners/new', name: 'banner-new', component: () => import('./pages/BannerEditorPage.vue') },
  { path: '/banners/:id', name: 'banner', component: () => import('./pages/BannerEditorPage.vue'), props: true },
  { path: '/packages', name: 'packages', component: () => import('./pages/PackagesPage.vue') },
  { path: '/providers', name: 'providers', component: () => import('./pages/ProvidersPage.vue'), props: { scope: 'web' } },
  { path: '/providers/new', name: 'provider-new', component: () => import('./pages/ProviderEditorPage.vue'), props: { scope: 'web' } },
  { path: '/providers/:id', name: 'provider', component: () => import('./pages/ProviderEditorPage.vue'), props: (to) => ({ scope: 'web', id: to.params.id }) },
  { path: '/admin-providers', name: 'admin-providers', component: () => import('./pages/ProvidersPage.vue'), props: { scope: 'admin' }, meta: { superAdmin: true } },
  { path: '/admin-providers/new', name: 'admin-provider-new', component: () => import('./pages/ProviderEditorPage.vue'), props: { scope: 'admin' }, meta: { superAdmin: true } },
  {
    path: '/admin-providers/:id',
    name: 'admin-provider',
    component: () => import('./pages/ProviderEditorPage.vue'),
    props: (to) => ({ scope: 'admin', id: to.params.id }),
    meta: { superAdmin: true },
  },
  { path: '/settings/rate-limits', name: 'rate-limits', component: () => import('./pages/RateLimitsPage.vue') },
  { path: '/audit', name: 'audit', component: () => import('./pages/AuditPage.vue') },
  { path: '/studio', name: 'studio', component: () => import('./pages/StudioPage.vue') },
  { path: '/:rest(.*)*', redirect: { name: 'overview' } },
]

export const router = createRouter({ history: createWebHistory('/admin/'), routes })

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  const session = useSessionStore()
  await session.check()
  if (!session.user) return { name: 'sign-in', query: { next: to.fullPath } }
  if (!session.isStaff) return { name: 'not-authorised' }
  if (to.meta.superAdmin && !session.isSuperAdmin) return { name: 'not-authorised', query: { need: 'super_admin' } }
  return true
})
