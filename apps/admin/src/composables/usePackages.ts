/**
 * Credit packages: the list (all of them, inactive ones too), and the editor's save, switch on/off and
 * withdraw (the API's DELETE: the package leaves the shop and this list; purchases made keep it). A
 * refusal comes back as the API's problem and its messages by field.
 */

import { useQuery, useQueryClient } from '@tanstack/vue-query'
import { api, type Problem, toProblem, unwrap } from '@/api'
import { type CreditPackage, packageBody, type PackageForm, packageProblems, withActive } from '@/packages/packageForm'
import { useCreationKey } from '@/composables/useCreationKey'
import { useSubmission } from '@/composables/useSubmission'

export function usePackages() {
  const queries = useQueryClient()
  const list = useQuery({
    queryKey: ['admin-packages'],
    queryFn: () => unwrap(api.GET('/api/admin/credit-packages')),
  })
  const { saving, errors, problem, clear, submit } = useSubmission()
  const creation = useCreationKey()

  async function refresh(): Promise<void> {
    await queries.invalidateQueries({ queryKey: ['admin-packages'] })
  }

  /** Creates (no id) or replaces a package; the package as stored, or null with `errors`/`problem` saying why. */
  async function save(form: PackageForm, id: string | null): Promise<CreditPackage | null> {
    clear()
    if (Object.keys(packageProblems(form)).length) return null
    const body = packageBody(form)
    const stored = await submit(() =>
      id
        ? api.PUT('/api/admin/credit-packages/{package_id}', { params: { path: { package_id: id } }, body })
        : api.POST('/api/admin/credit-packages', { body, headers: { 'Idempotency-Key': creation.keyFor(body) } }),
    )
    if (stored && !id) creation.succeeded()
    if (stored) await refresh()
    return stored
  }

  /** Puts a package on sale or takes it off: null when done, else the refusal. */
  async function setActive(pkg: CreditPackage, isActive: boolean): Promise<Problem | null> {
    try {
      const result = await api.PUT('/api/admin/credit-packages/{package_id}', { params: { path: { package_id: pkg.id } }, body: withActive(pkg, isActive) })
      if (!result.response.ok) return toProblem(result.error, result.response.status)
      await refresh()
      return null
    } catch {
      return toProblem(null, 0)
    }
  }

  /** Withdraws a package: null when gone, else the refusal. */
  async function remove(id: string): Promise<Problem | null> {
    try {
      const result = await api.DELETE('/api/admin/credit-packages/{package_id}', { params: { path: { package_id: id } } })
      if (!result.response.ok) return toProblem(result.error, result.response.status)
      await refresh()
      return null
    } catch {
      return toProblem(null, 0)
    }
  }

  return { list, errors, problem, saving, save, setActive, remove }
}
