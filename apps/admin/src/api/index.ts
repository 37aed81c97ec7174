/**
 * The admin app talks to the gateway exactly as the web app does: the same typed client (generated from the
 * gateway's OpenAPI document), the same cookie session with CSRF echo and one-time refresh, the same
 * problem+json handling. Shared, not copied.
 */
export { api, csrfToken, onSessionEnded } from '@shared/api/client'
export { ProblemError, toProblem, unwrap, type Problem } from '@shared/api/problem'
export type { components } from '@shared/api/schema'
