/** What the overview page shows of the platform's figures that needs more than a number format. */

import type { components } from '@/api'
import { formatPrice } from '@/packages/packageForm'

export type Revenue = Pick<components['schemas']['Revenue'], 'currency' | 'amount_minor'>

/**
 * The window's revenue, one amount per currency (`$12.34 · ¥1,200`), each read with its currency's own
 * minor unit (USD has cents, JPY none); a dash when nothing was sold.
 */
export function revenueText(revenue: readonly Revenue[], locale: string): string {
  return revenue.map((r) => formatPrice(r.amount_minor, r.currency.toUpperCase(), locale)).join(' · ') || '—'
}
