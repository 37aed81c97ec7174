-- The root task of each task (the top of its parent chain), recorded from TaskRequested, so a user's
-- transactions can be grouped by the work they paid for (`GET /v1/credits/me/transaction-groups`).
-- Tasks requested before this table existed have no row: their entries are grouped under their own task.
CREATE TABLE task_roots (
    task_id       text PRIMARY KEY,
    user_id       text NOT NULL,
    root_task_id  text NOT NULL,
    tool_slug     text NOT NULL
);
CREATE INDEX task_roots_root_idx ON task_roots (root_task_id);
