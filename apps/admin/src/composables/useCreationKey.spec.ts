import { describe, expect, it } from 'vitest'
import { useCreationKey } from './useCreationKey'

describe('useCreationKey', () => {
  it('keeps the key while the same body is sent again', () => {
    const creation = useCreationKey()
    const key = creation.keyFor({ name: 'Starter', credits: 100 })

    expect(creation.keyFor({ name: 'Starter', credits: 100 })).toBe(key)
  })

  it('takes a new key when the body changed', () => {
    const creation = useCreationKey()
    const key = creation.keyFor({ name: 'Starter', credits: 100 })

    expect(creation.keyFor({ name: 'Starter', credits: 200 })).not.toBe(key)
  })

  it('takes a new key after a creation succeeded, even for the same body', () => {
    const creation = useCreationKey()
    const key = creation.keyFor({ name: 'Starter' })
    creation.succeeded()

    expect(creation.keyFor({ name: 'Starter' })).not.toBe(key)
  })
})
