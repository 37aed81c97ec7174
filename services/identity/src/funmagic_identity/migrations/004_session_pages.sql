-- A user's sessions are listed newest first, a page at a time, by the unique (created_at, id) the cursors
-- carry (GET /v1/sessions): this index reads a page in that order without sorting. It serves whatever
-- sessions_user_idx did (a user's sessions by date), which it replaces.
DROP INDEX IF EXISTS sessions_user_idx;
CREATE INDEX sessions_user_created_idx ON sessions (user_id, created_at DESC, id DESC);
