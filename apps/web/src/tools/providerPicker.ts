/**
 * The provider picker of a tool page: where the step a run starts with offers `choices` (the tool's public
 * config, e.g. Image to 3D on the built-in provider or Tripo), the user picks the provider, its model and
 * the options it lets users set. The rules are the tasks service's (`input.provider` of `POST /api/tasks`):
 * the provider one of the choices, the model one of the choice's (the first is the default), each option
 * one the choice offers with a value it allows — so the picker never sends what the server would refuse.
 */

import { computed, type Ref, ref, watch } from 'vue'

export type OptionValue = string | number | boolean

export interface OptionRule {
  type: string
  values?: string[] | null
  min?: number | null
  max?: number | null
  default?: OptionValue | null
}

export interface ProviderChoice {
  provider: string
  label: string
  models: string[]
  options: Record<string, OptionRule>
  default?: boolean | null
}

export interface ProviderPick {
  name: string
  model?: string
  options?: Record<string, OptionValue>
}

/** The choice a run starts on: the step's own provider (marked `default`), else the first. */
export function defaultChoice(choices: readonly ProviderChoice[]): ProviderChoice | null {
  return choices.find((c) => c.default === true) ?? choices[0] ?? null
}

/** The options a choice starts with: each one's `default`, where it has one. */
export function initialOptions(choice: ProviderChoice | null): Record<string, OptionValue> {
  const values: Record<string, OptionValue> = {}
  for (const [name, rule] of Object.entries(choice?.options ?? {})) {
    if (rule.default !== null && rule.default !== undefined) values[name] = rule.default
  }
  return values
}

/** Whether `rule` allows `value` (the server's check). */
export function allows(rule: OptionRule, value: OptionValue): boolean {
  if (rule.type === 'boolean') return typeof value === 'boolean'
  if (rule.type === 'integer') {
    return typeof value === 'number' && Number.isInteger(value) && value >= (rule.min ?? -Infinity) && value <= (rule.max ?? Infinity)
  }
  return typeof value === 'string' && (rule.values ?? []).includes(value)
}

/** The options a value is wrong for (empty: the pick may be sent). */
export function optionProblems(choice: ProviderChoice | null, options: Record<string, OptionValue | null | undefined>): string[] {
  if (!choice) return []
  return Object.entries(options)
    .filter(([name, value]) => {
      const rule = choice.options[name]
      return value !== null && value !== undefined && (rule === undefined || !allows(rule, value))
    })
    .map(([name]) => name)
}

/** `input.provider` for the picked values: unset options are left out (the provider's own default). */
export function pickRequest(choice: ProviderChoice, model: string | null, options: Record<string, OptionValue | null | undefined>): ProviderPick {
  const chosen: Record<string, OptionValue> = {}
  for (const [name, value] of Object.entries(options)) {
    if (value !== null && value !== undefined && name in choice.options) chosen[name] = value
  }
  return {
    name: choice.provider,
    ...(model && choice.models.includes(model) ? { model } : {}),
    ...(Object.keys(chosen).length ? { options: chosen } : {}),
  }
}

/** The picker's state for a page: the choices come from the tool (they change with the step). */
export function useProviderPicker(choices: Ref<readonly ProviderChoice[]>) {
  const provider = ref<string | null>(null)
  const model = ref<string | null>(null)
  const options = ref<Record<string, OptionValue | null>>({})
  const choice = computed(() => choices.value.find((c) => c.provider === provider.value) ?? null)

  function choose(name: string | null): void {
    const found = choices.value.find((c) => c.provider === name) ?? defaultChoice(choices.value)
    provider.value = found?.provider ?? null
    model.value = found?.models[0] ?? null
    options.value = initialOptions(found)
  }

  // Back to the default when the choices really change (another step), not when the tool is read again.
  watch(() => JSON.stringify(choices.value), () => choose(null), { immediate: true })

  const problems = computed(() => optionProblems(choice.value, options.value))
  /** What to send as `input.provider` (null: the step offers no choice). */
  const request = computed(() => (choice.value ? pickRequest(choice.value, model.value, options.value) : null))

  return { provider, model, options, choice, choose, problems, request }
}
