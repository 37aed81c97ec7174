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

export type TaskPoint = Pick<components['schemas']['TaskStatsPoint'], 'at' | 'created' | 'completed' | 'failed'>

export interface ChartSummary {
  created: number
  failed: number
  /** The tallest bar: the scale of the chart's vertical axis (at least 1, so empty bars stay at 0). */
  peak: number
  /** The window's average pace, in the largest unit that shows at least one task: "4 a day", not "0 a minute". */
  rate: Rate
}

export interface Rate {
  tasks: number
  per: 'minute' | 'hour' | 'day'
}

/** The totals a chart of `points` (buckets of `bucketSeconds`) shows beside its bars. */
export function chartSummary(points: readonly TaskPoint[], bucketSeconds: number): ChartSummary {
  const created = points.reduce((sum, p) => sum + p.created, 0)
  const failed = points.reduce((sum, p) => sum + p.failed, 0)
  return {
    created,
    failed,
    peak: Math.max(1, ...points.map((p) => p.created)),
    rate: averageRate(created, (points.length * bucketSeconds) / 60),
  }
}

function averageRate(created: number, minutes: number): Rate {
  const perMinute = minutes > 0 ? created / minutes : 0
  if (perMinute >= 1 || perMinute === 0) return { tasks: perMinute, per: 'minute' }
  if (perMinute * 60 >= 1) return { tasks: perMinute * 60, per: 'hour' }
  return { tasks: perMinute * 60 * 24, per: 'day' }
}

/** Whether a chart's time labels need the date: its buckets reach across more than a few hours. */
export function spansDays(points: readonly TaskPoint[], bucketSeconds: number): boolean {
  return points.length * bucketSeconds > 12 * 3600
}
