-- Providers owns the provider registry (two scopes, one shape) and the durable step jobs.
-- Rate-limit state lives in Redis, not here.
CREATE TABLE providers (
    id                  uuid PRIMARY KEY,
    name                text NOT NULL,
    display_name        text,
    type                text NOT NULL CHECK (type IN ('openai', 'fal', 'tripo', 'local')),
    api_key_ciphertext  bytea,          -- AES-256-GCM, bound to the row id; never leaves this service
    api_key_id          text,           -- which master key encrypted it (for rotation)
    api_key_hint        text,           -- '••••' + last four characters, what admins see
    base_url            text,
    config              jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_active           boolean NOT NULL DEFAULT true,
    is_healthy          boolean,
    health_checked_at   timestamptz,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    deleted_at          timestamptz,
    CHECK ((api_key_ciphertext IS NULL) = (api_key_id IS NULL))
);
CREATE UNIQUE INDEX providers_name_idx ON providers (name) WHERE deleted_at IS NULL;

CREATE TABLE admin_providers (LIKE providers INCLUDING ALL);

-- One row per StepRequested (task, step, attempt): survives a crash of the service. A runner claims a
-- due job with a lease; a job whose lease ran out (its runner died) is claimed again.
CREATE TABLE step_jobs (
    id                   uuid PRIMARY KEY,
    task_id              text NOT NULL,
    user_id              text NOT NULL,
    step_id              text NOT NULL,
    attempt              integer NOT NULL,
    step_type            text NOT NULL,
    provider             text NOT NULL,
    model                text NOT NULL,
    scope                text NOT NULL CHECK (scope IN ('web', 'admin')),
    input                jsonb NOT NULL,   -- asset ids, prompt, options: never keys, never user URLs
    deadline_at          timestamptz NOT NULL,
    correlation_id       text,             -- of the StepRequested, carried into the step's events
    causation_id         text,             -- the StepRequested's event id
    status               text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    run_at               timestamptz NOT NULL,
    retries              integer NOT NULL DEFAULT 0,  -- provider retries used (429 and transient errors)
    delays               integer NOT NULL DEFAULT 0,  -- rate-limiter and circuit delays (no retry used)
    claims               integer NOT NULL DEFAULT 0,  -- times a runner took it (more than once after a crash)
    lease_owner          text,
    lease_until          timestamptz,
    provider_request_id  text,
    error_code           text,
    error_message        text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz,
    UNIQUE (task_id, step_id, attempt)
);
CREATE INDEX step_jobs_due_idx ON step_jobs (run_at) WHERE status = 'queued';
CREATE INDEX step_jobs_leased_idx ON step_jobs (lease_until) WHERE status = 'running';
CREATE INDEX step_jobs_task_idx ON step_jobs (task_id);
