-- Tasks: one row per task (the saga's state) and its payload (input, per-step outputs, final output).
CREATE TABLE tasks (
    id                uuid PRIMARY KEY,
    user_id           text NOT NULL,
    tool_id           uuid NOT NULL,
    tool_slug         text NOT NULL,
    parent_task_id    uuid,
    status            text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    plan              jsonb NOT NULL,          -- the steps as they were when the task was created
    step_ids          text[] NOT NULL,
    current_step_id   text,
    completed_steps   text[] NOT NULL DEFAULT '{}',
    attempt           integer NOT NULL DEFAULT 1,
    price             integer NOT NULL CHECK (price >= 0),
    charged_credits   integer,
    step_deadline_at  timestamptz,
    idempotency_key   text,
    request_hash      text,
    error_code        text,
    error_message     text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX tasks_user_idx ON tasks (user_id, created_at DESC, id DESC);
CREATE INDEX tasks_user_status_idx ON tasks (user_id, status);
CREATE INDEX tasks_listing_idx ON tasks (created_at DESC, id DESC);
CREATE INDEX tasks_active_idx ON tasks (status, step_deadline_at) WHERE status IN ('pending', 'running');
CREATE INDEX tasks_parent_idx ON tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;

CREATE TABLE task_payloads (
    task_id   uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    input     jsonb NOT NULL,
    steps     jsonb NOT NULL DEFAULT '[]'::jsonb,   -- [{step_id, attempt, assets: [{asset_id, role}], metadata}]
    output    jsonb,
    error     text
);
