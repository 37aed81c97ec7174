/**
 * The tool editor's state and actions: the tool (loaded once, for an existing one), what the step form
 * offers (the step types' schema, the configured providers, the tool types), the edits that need the
 * schema (a step's type or provider: its model and options follow), saving (create or change) with the
 * API's refusals by field, and whether there are unsaved changes.
 *
 * The pure parts (mapping, defaults, price, preview, refusals) are in `@/tools/toolForm`.
 */

import { useQuery, useQueryClient } from '@tanstack/vue-query'
import { computed, type InjectionKey, inject, ref, watch } from 'vue'
import { api, unwrap } from '@/api'
import { useCreationKey } from '@/composables/useCreationKey'
import { useSubmission } from '@/composables/useSubmission'
import {
  blankTool,
  fromTool,
  MAX_STEPS,
  MAX_STYLES,
  moved,
  newStep,
  newStyle,
  providerChoices,
  providerTypeOf,
  type StepType,
  supportFor,
  toBody,
  type ToolForm,
  withProvider,
  withType,
} from '@/tools/toolForm'

export function useStepSchema() {
  const stepTypes = useQuery({
    queryKey: ['admin-step-types'],
    queryFn: () => unwrap(api.GET('/api/admin/step-types')),
    staleTime: 5 * 60_000,
  })
  const providers = useQuery({
    queryKey: ['admin-tool-editor', 'providers'],
    queryFn: () => unwrap(api.GET('/api/admin/providers', { params: { query: { limit: 200 } } })),
  })
  const toolTypes = useQuery({
    queryKey: ['admin-tool-types'],
    queryFn: () => unwrap(api.GET('/api/admin/tool-types', { params: { query: { limit: 200 } } })),
  })
  return { stepTypes, providers, toolTypes }
}

export function useToolForm(toolId: () => string | null) {
  const queries = useQueryClient()
  const schema = useStepSchema()
  const catalog = computed(() => schema.stepTypes.data.value)
  const providers = computed(() => schema.providers.data.value?.items ?? [])
  const tool = useQuery({
    queryKey: ['admin-tool', computed(() => toolId())],
    queryFn: () => unwrap(api.GET('/api/admin/tools/{tool_id}', { params: { path: { tool_id: toolId() ?? '' } } })),
    enabled: computed(() => toolId() !== null),
    // The form is the copy being edited: a refetch must not replace it behind the admin's back.
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  })

  const form = ref<ToolForm>(blankTool())
  const savedBody = ref('')
  const { saving, errors, problem, submit } = useSubmission()
  const creation = useCreationKey()
  const loaded = computed(() => toolId() === null || tool.data.value !== undefined)

  function reset(next: ToolForm): void {
    form.value = next
    savedBody.value = JSON.stringify(toBody(next))
  }

  watch(
    () => tool.data.value,
    (data) => {
      if (data) reset(fromTool(data))
    },
    { immediate: true },
  )

  // A new tool starts with one step, once the schema says what a step's defaults are.
  watch(
    [() => catalog.value, () => toolId()],
    ([ready, id]) => {
      if (ready && id === null && form.value.steps.length === 0) {
        const fresh = blankTool()
        fresh.steps = [newStep([], ready, providers.value)]
        reset(fresh)
      }
    },
    { immediate: true },
  )

  const dirty = computed(() => loaded.value && JSON.stringify(toBody(form.value)) !== savedBody.value)

  // --- steps and style references

  function addStep(): void {
    if (form.value.steps.length >= MAX_STEPS) return
    form.value.steps.push(newStep(form.value.steps, catalog.value, providers.value))
  }
  function removeStep(index: number): void {
    if (form.value.steps.length > 1) form.value.steps.splice(index, 1)
  }
  function moveStep(index: number, delta: number): void {
    form.value.steps = moved(form.value.steps, index, delta)
  }
  function setStepType(index: number, type: StepType): void {
    const step = form.value.steps[index]
    if (step) form.value.steps[index] = withType(step, catalog.value, providers.value, type)
  }
  function setProvider(index: number, name: string): void {
    const step = form.value.steps[index]
    if (step) form.value.steps[index] = withProvider(step, catalog.value, providers.value, name)
  }
  function addStyle(): void {
    if (form.value.styles.length < MAX_STYLES) form.value.styles.push(newStyle(form.value.styles))
  }
  function removeStyle(index: number): void {
    form.value.styles.splice(index, 1)
  }
  function moveStyle(index: number, delta: number): void {
    form.value.styles = moved(form.value.styles, index, delta)
  }

  /** What the step form offers for step `index`: its providers, the chosen one's models and option fields. */
  function choicesFor(index: number) {
    const step = form.value.steps[index]
    if (!step) return { providers: [], models: [], options: [] }
    const support = supportFor(catalog.value, step.type, providerTypeOf(providers.value, step.provider) ?? '')
    const models = support?.models ?? []
    return {
      providers: providerChoices(catalog.value, providers.value, step.type),
      models: models.includes(step.model) || !step.model ? models : [...models, step.model],
      options: support?.options ?? [],
    }
  }

  // --- saving

  /** Saves the form; the tool as stored, or null with `errors`/`problem` saying why not. */
  async function save() {
    const body = toBody(form.value)
    const id = toolId()
    const stored = await submit(() =>
      id
        ? api.PATCH('/api/admin/tools/{tool_id}', { params: { path: { tool_id: id } }, body })
        : api.POST('/api/admin/tools', { body, headers: { 'Idempotency-Key': creation.keyFor(body) } }),
    )
    if (!stored) return null
    if (!id) creation.succeeded()
    reset(fromTool(stored))
    queries.setQueryData(['admin-tool', stored.id], stored)
    await queries.invalidateQueries({ queryKey: ['admin-tools'] })
    return stored
  }

  return {
    form, tool, schema, catalog, providers, errors, problem, saving, dirty, loaded,
    addStep, removeStep, moveStep, setStepType, setProvider, addStyle, removeStyle, moveStyle, choicesFor, save,
  }
}

export type ToolFormController = ReturnType<typeof useToolForm>
export const TOOL_FORM: InjectionKey<ToolFormController> = Symbol('tool-form')

/** The editor's controller, for the parts of the page (a step, the translations) it is provided to. */
export function useToolFormContext(): ToolFormController {
  const controller = inject(TOOL_FORM)
  if (!controller) throw new Error('useToolFormContext outside the tool editor')
  return controller
}
