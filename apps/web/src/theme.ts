import type { GlobalThemeOverrides } from 'naive-ui'

/**
 * The brand on top of Naive UI's light and dark themes: one violet accent, rounder corners, and text that
 * reads (4.5:1 or more, checked by `tests/e2e/web/test_contrast.py`). Naive draws placeholders, empty
 * states and the steps still to come in its disabled grey (1.8:1 on white, 3.4:1 on the dark cards), a
 * field's rules in a grey of 4.2:1, a success tag's and a secondary error button's text on their own tints at
 * 3.0:1 and 3.9:1, and the violet's secondary buttons on their tint at 4.48:1: each is a shade darker (lighter
 * in the dark theme) here.
 */
/** Naive's light-theme greys and success text, darkened to 4.5:1 on white (the admin app uses them too). */
export const READABLE_LIGHT = { quiet: '#6b7078', placeholder: '#737373', successText: '#0f7a41' } as const

export function themeOverrides(dark: boolean): GlobalThemeOverrides {
  const primary = dark ? '#a78bfa' : '#7636e3'
  const quiet = dark ? 'rgba(255, 255, 255, 0.55)' : READABLE_LIGHT.quiet
  return {
    common: {
      primaryColor: primary,
      primaryColorHover: dark ? '#c4b5fd' : '#6d28d9',
      primaryColorPressed: dark ? '#8b5cf6' : '#5b21b6',
      primaryColorSuppl: primary,
      borderRadius: '10px',
      fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC", sans-serif',
      placeholderColor: dark ? quiet : READABLE_LIGHT.placeholder,
      ...(dark ? {} : { textColor3: quiet, errorColor: '#b4213f', errorColorSuppl: '#b4213f' }),
    },
    Empty: { textColor: quiet },
    Steps: {
      indicatorTextColorWait: quiet,
      indicatorBorderColorWait: quiet,
      headerTextColorWait: quiet,
      descriptionTextColorWait: quiet,
    },
    ...(dark ? {} : { Tag: { textColorSuccess: READABLE_LIGHT.successText } }),
  }
}
