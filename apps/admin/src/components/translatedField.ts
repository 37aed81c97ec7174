/** One text of `TranslationsEditor`: where it is in a locale's texts, how it is labelled and what English says. */
export interface TranslatedField {
  /** Where the text is in a locale's texts: `title`, or `steps.k3` inside a group. */
  key: string
  label: string
  /** The English text, shown when the translation is empty. */
  base: string
  multiline?: boolean
  maxlength?: number
  /** The field's path in the API's refusals, under `translations.<locale>.` (default: `key`). */
  apiPath?: string
}
