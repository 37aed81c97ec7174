/**
 * The admin app's pages. Every page but sign-in and not-authorised needs an admin or super admin; the guard
 * only spares people a page that would fail, since the gateway refuses each admin call on its own.
 */

import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { useSessionStore } from './stores/session'

declare module 'vue-router' {
  interface RouteMeta {
    public?: boolean
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
  { path: '/:rest(.*)*', redirect: { name: 'overview' } },
]

export const router = createRouter({ history: createWebHistory('/admin/'), routes })

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  const session = useSessionStore()
  await session.check()
  if (!session.user) return { name: 'sign-in', query: { next: to.fullPath } }
  if (!session.isStaff) return { name: 'not-authorised' }
  return true
})
