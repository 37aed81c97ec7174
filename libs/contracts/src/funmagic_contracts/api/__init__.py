"""The public HTTP API's request and reply models, one module per route family.

    identity   /api/auth/*, /api/admin/users*          tasks      /api/tasks*, /api/admin/tasks*
    catalog    /api/tool-types, /api/tools, /api/banners and their admin routes
    credits    /api/credits/*, /api/webhooks/stripe, admin credits and packages
    storage    /api/assets*                             providers  /api/admin/providers, admin-providers
    stats      the `?window=` of /api/admin/stats/* (tasks' and credits' figures are in their modules)
    queue      /api/admin/queue/* (the queue monitor: lag, dead letters and their replay, step jobs,
               the rate limiter, circuit breakers)
    audit      /api/admin/audit (admin writes, merged over the services that made them)
    diagnostics /api/admin/tasks/{task_id}/provider-calls (a task's provider calls, redacted)

The gateway declares its routes with them (and /openapi.json is generated from them). `Request` models
(extra fields refused) are the bodies and queries the gateway forwards to a service as they are, so the
service can validate its own input with the same class; each module says which service route a model
belongs to, and where the gateway's model has a field the service never sees. `Reply` models are what the
gateway passes on of a service's answer (extra fields ignored).

Schema text comes from `Field(description=…)` only: a class docstring would become the component's
`description` in /openapi.json, so models are explained with comments.
"""

from funmagic_contracts.api.base import Reply, Request

__all__ = ["Reply", "Request"]
