-- Provider diagnostics: the HTTP calls a step job made to its provider, for admins reading a task. Each
-- row is redacted before it is written (`domain.provider_calls`): no header but the request ids, no key,
-- no image or base64 data, each body capped at 8 KiB of JSON text. Goes with its job.
CREATE TABLE provider_calls (
    id             bigserial PRIMARY KEY,   -- the order the calls were recorded in
    job_id         uuid NOT NULL REFERENCES step_jobs (id) ON DELETE CASCADE,
    started_at     timestamptz NOT NULL,
    method         text NOT NULL,
    url            text NOT NULL,           -- without query, fragment or credentials
    status         integer,                 -- NULL: no answer (see error)
    duration_ms    integer NOT NULL CHECK (duration_ms >= 0),
    request_ids    jsonb NOT NULL DEFAULT '{}',
    request_body   jsonb,
    response_body  jsonb,
    error          text CHECK (length(error) <= 300)
);
CREATE INDEX provider_calls_job_idx ON provider_calls (job_id, id);
