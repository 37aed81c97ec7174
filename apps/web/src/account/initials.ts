/** What the avatar shows when there is no picture: up to two letters of the name (or of the email). */
export function initials(name: string | null | undefined, email: string | null | undefined): string {
  const source = (name ?? '').trim() || (email ?? '').split('@', 1)[0]?.trim() || ''
  const words = source.split(/[\s._-]+/u).filter(Boolean)
  // Whole characters (not UTF-16 halves), so "Ωmega" or an emoji name still gives a proper letter.
  const first = (word: string | undefined) => (word ? ([...word][0] ?? '') : '')
  const letters = words.length > 1 ? first(words[0]) + first(words[words.length - 1]) : [...(words[0] ?? '')].slice(0, 1).join('')
  return letters.toLocaleUpperCase() || '?'
}
