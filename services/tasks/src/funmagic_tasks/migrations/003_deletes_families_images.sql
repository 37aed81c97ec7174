-- Issue 17: deleted tasks, the creations list, tools kept for the tasks that ran them, catalog image URLs.

-- A deleted task (and its child tasks) is kept for the ledger and the audit; no list or read shows it.
ALTER TABLE tasks ADD COLUMN deleted_at timestamptz;
-- The creations list: a user's live top-level tasks, newest first (keyset pages).
CREATE INDEX tasks_user_top_idx ON tasks (user_id, created_at DESC, id DESC)
    WHERE parent_task_id IS NULL AND deleted_at IS NULL;
-- Whether any task ran a tool: a tool tasks ran is soft-deleted (kept for them), another one removed.
CREATE INDEX tasks_tool_idx ON tasks (tool_id);

-- The CDN URL of each image an entry names (thumbnail, style references), by asset id: storage publishes
-- the image when the entry is saved, and public views show the URL.
ALTER TABLE tools ADD COLUMN image_urls jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE banners ADD COLUMN image_urls jsonb NOT NULL DEFAULT '{}'::jsonb;
