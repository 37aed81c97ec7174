import type { GlobalThemeOverrides } from 'naive-ui'
import { READABLE_LIGHT } from '@shared/theme'

/**
 * The brand's violet on Naive UI's light theme, and text that reads: Naive's secondary text (4.2:1 on
 * white), placeholders (1.8:1), empty states (its disabled grey) and coloured tags' text on their tint
 * (success 3.1:1, warning 2:1) are darkened to 4.5:1 or more.
 */
export const themeOverrides: GlobalThemeOverrides = {
  common: {
    primaryColor: '#7c3aed',
    primaryColorHover: '#8b5cf6',
    primaryColorPressed: '#6d28d9',
    textColor3: READABLE_LIGHT.quiet,
    placeholderColor: READABLE_LIGHT.placeholder,
  },
  Empty: { textColor: READABLE_LIGHT.quiet },
  Tag: {
    textColorSuccess: READABLE_LIGHT.successText,
    textColorWarning: '#8a5300',
    textColorError: '#b4213f',
    textColorInfo: '#1d5fa8',
  },
}
