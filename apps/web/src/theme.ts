import type { GlobalThemeOverrides } from 'naive-ui'

/** The brand on top of Naive UI's light and dark themes: one violet accent, rounder corners. */
export function themeOverrides(dark: boolean): GlobalThemeOverrides {
  const primary = dark ? '#a78bfa' : '#7c3aed'
  return {
    common: {
      primaryColor: primary,
      primaryColorHover: dark ? '#c4b5fd' : '#6d28d9',
      primaryColorPressed: dark ? '#8b5cf6' : '#5b21b6',
      primaryColorSuppl: primary,
      borderRadius: '10px',
      fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC", sans-serif',
    },
  }
}
