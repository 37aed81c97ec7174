/**
 * Which plural form a two-form message (`'{n} credit | {n} credits'`) takes, as the language says it:
 * French and (Brazilian) Portuguese treat 0 as singular ("0 crédit"); English, German and Spanish do not.
 * Languages without plural forms (zh, ja, ko, vi) have one-form messages, which need no rule.
 */

type PluralRule = (choice: number, choicesLength: number) => number

export function pluralRule(locale: string): PluralRule {
  const rules = new Intl.PluralRules(locale)
  return (choice, choicesLength) => {
    if (choicesLength === 2) return rules.select(Math.abs(choice)) === 'one' ? 0 : 1
    // Three forms (`none | one | many`), as vue-i18n does by default.
    const count = Math.abs(choice)
    return count ? Math.min(count, 2) : 0
  }
}

/** The rules vue-i18n needs beyond its default (which is English's). */
export const PLURAL_RULES: Record<string, PluralRule> = { fr: pluralRule('fr'), pt: pluralRule('pt') }
