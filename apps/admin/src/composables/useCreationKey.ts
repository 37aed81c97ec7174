/**
 * One `Idempotency-Key` per intended creation: the same while the same body is sent again (a double click, a
 * timeout, "try again"), so the server creates once; a new one once the creation succeeded or the body
 * changed (the server refuses a key reused for another body: 409 `idempotency_key_reused`).
 */

export function useCreationKey() {
  let pending: { body: string; key: string } | null = null

  function keyFor(body: unknown): string {
    const text = JSON.stringify(body)
    if (pending?.body !== text) pending = { body: text, key: crypto.randomUUID() }
    return pending.key
  }

  function succeeded(): void {
    pending = null
  }

  return { keyFor, succeeded }
}
