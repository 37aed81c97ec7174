/**
 * What a tool's page asks the user for, derived from the tool's step config (the same rules the tasks
 * service applies, so the form never offers what the server would refuse):
 * - a task runs one step (`stepId`) or, for a pipeline started without one, every step in order;
 * - the first step of what runs decides the inputs: an image (required / optional / none), a prompt
 *   (required / optional / none), a style reference (which stands in for a prompt);
 * - a later step of a tool that is not a pipeline continues a finished task (a chained task, FigMe's
 *   "make it 3D" after the figurine): it needs no upload, only the parent task;
 * - the first step may offer a choice of provider (`choices`: see `providerPicker.ts`).
 */

import type { ProviderChoice, ProviderPick } from './providerPicker'

export type InputMode = 'required' | 'optional' | 'none'

export interface StepConfig {
  id: string
  name: string
  type: string
  cost: number
  input: { image: string; prompt: string }
  choices?: ProviderChoice[]
}

export interface StyleReference {
  id: string
  name: string
  prompt: string
}

export interface ToolConfig {
  steps: StepConfig[]
  styleReferences: StyleReference[]
  pipeline: boolean
}

export interface StepForm {
  /** The step ids this run covers, in order. */
  stepIds: string[]
  /** The `stepId` to send (null: the server's default — the whole pipeline, or the first step). */
  stepId: string | null
  image: InputMode
  prompt: InputMode
  styles: StyleReference[]
  cost: number
  /** The run continues a parent task's output instead of taking an upload. */
  continuesParent: boolean
  /** The providers the user may choose for the first step (empty: no picker). */
  choices: ProviderChoice[]
}

export interface FormValues {
  imageAssetId?: string | null
  prompt?: string | null
  styleReferenceId?: string | null
  parentTaskId?: string | null
  provider?: ProviderPick | null
}

export type FormProblem = 'image_required' | 'prompt_required' | 'prompt_too_long' | 'parent_required'

export const MAX_PROMPT_LENGTH = 4000

function mode(value: string): InputMode {
  return value === 'required' || value === 'optional' ? value : 'none'
}

/** The form of one run: `stepId` null starts the tool (all steps of a pipeline, else the first one). */
export function formFor(config: ToolConfig, stepId: string | null): StepForm {
  const index = stepId === null ? 0 : config.steps.findIndex((s) => s.id === stepId)
  if (index === -1) throw new Error(`the tool has no step ${stepId}`)
  const covered = stepId === null && config.pipeline ? config.steps : config.steps.slice(index, index + 1)
  const first = covered[0]
  if (first === undefined) throw new Error('the tool has no steps')
  const continuesParent = index > 0
  const prompt = mode(first.input.prompt)
  return {
    stepIds: covered.map((s) => s.id),
    stepId: stepId === null || (index === 0 && !config.pipeline) ? null : first.id,
    // A later step works on the parent's output: nothing to upload.
    image: continuesParent ? 'none' : mode(first.input.image),
    prompt,
    styles: prompt === 'none' ? [] : config.styleReferences,
    cost: covered.reduce((sum, s) => sum + s.cost, 0),
    continuesParent,
    choices: first.choices ?? [],
  }
}

/** Every reason the server would refuse these values for this form (empty: send it). */
export function problemsOf(form: StepForm, values: FormValues): FormProblem[] {
  const problems: FormProblem[] = []
  if (form.image === 'required' && !values.imageAssetId) problems.push('image_required')
  const prompt = values.prompt?.trim() ?? ''
  if (prompt.length > MAX_PROMPT_LENGTH) problems.push('prompt_too_long')
  if (form.prompt === 'required' && prompt === '' && !values.styleReferenceId) problems.push('prompt_required')
  if (form.continuesParent && !values.parentTaskId) problems.push('parent_required')
  return problems
}

/** The body of `POST /api/tasks` for these values (only what the form takes). */
export function taskRequest(toolSlug: string, form: StepForm, values: FormValues) {
  const input: { imageAssetId?: string; prompt?: string; styleReferenceId?: string; provider?: ProviderPick } = {}
  if (form.image !== 'none' && values.imageAssetId) input.imageAssetId = values.imageAssetId
  const prompt = values.prompt?.trim()
  if (form.prompt !== 'none' && prompt) input.prompt = prompt
  if (form.styles.length > 0 && values.styleReferenceId) input.styleReferenceId = values.styleReferenceId
  if (form.choices.length > 0 && values.provider) input.provider = values.provider
  return {
    toolSlug,
    ...(form.stepId !== null ? { stepId: form.stepId } : {}),
    ...(form.continuesParent && values.parentTaskId ? { parentTaskId: values.parentTaskId } : {}),
    input,
  }
}

/** The step a finished run can be continued with (FigMe: the 3D step after the figurine), or null. */
export function nextStepAfter(config: ToolConfig, completedStepIds: readonly string[]): StepConfig | null {
  if (config.pipeline) return null
  const last = completedStepIds[completedStepIds.length - 1]
  const index = config.steps.findIndex((s) => s.id === last)
  return index === -1 ? null : (config.steps[index + 1] ?? null)
}
