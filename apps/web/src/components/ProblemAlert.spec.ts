import { mount } from '@vue/test-utils'
import { describe, expect, it, vi } from 'vitest'
import { createI18n } from 'vue-i18n'
import { createMemoryHistory, createRouter } from 'vue-router'
import en from '@/i18n/en'
import ProblemAlert from './ProblemAlert.vue'

function mountAlert(props: Record<string, unknown>) {
  const i18n = createI18n({ legacy: false, locale: 'en', messages: { en } })
  const page = { template: '<p />' }
  const routes = [
    { path: '/', component: page },
    { path: '/:locale?/pricing', name: 'pricing', component: page },
  ]
  const router = createRouter({ history: createMemoryHistory(), routes })
  return mount(ProblemAlert, { props: props as never, global: { plugins: [i18n, router] } })
}

describe('ProblemAlert', () => {
  it('says a network failure in words, with a Retry button when asked to retry', async () => {
    const retry = vi.fn()
    const wrapper = mountAlert({ code: 'network', onRetry: retry })
    expect(wrapper.text()).toContain('Cannot reach FunMagic. Check your connection.')
    const button = wrapper.get('[data-testid="retry"]')
    expect(button.text()).toBe('Try again')
    await button.trigger('click')
    expect(retry).toHaveBeenCalledOnce()
  })

  it('offers no Retry without a listener', () => {
    expect(mountAlert({ code: 'network' }).find('[data-testid="retry"]').exists()).toBe(false)
  })

  it('counts the seconds to wait in the right form', () => {
    expect(mountAlert({ code: 'rate_limited', retryAfterSeconds: 1 }).text()).toContain('Try again in 1 second.')
    expect(mountAlert({ code: 'rate_limited', retryAfterSeconds: 5 }).text()).toContain('Try again in 5 seconds.')
  })

  it('links to the pricing page as one link, not a button inside a link', async () => {
    const wrapper = mountAlert({ code: 'insufficient_credits' })
    await vi.waitFor(() => expect(wrapper.find('a').exists()).toBe(true))
    const link = wrapper.get('a')
    expect(link.text()).toBe('Get credits')
    expect(link.attributes('href')).toMatch(/\/pricing$/)
    expect(link.find('button').exists()).toBe(false)
  })
})
