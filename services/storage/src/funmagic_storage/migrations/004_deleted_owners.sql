-- Accounts identity deleted (UserDeleted): their files are purged once `due_at` (the deletion plus the grace
-- period, DELETED_USER_ASSET_GRACE_HOURS) has passed, by the purge worker; `purged_at` says it was done. The
-- row stays: nothing new is registered for a deleted account (see domain/deleted_owners.py).
CREATE TABLE deleted_owners (
    user_id     text PRIMARY KEY,
    deleted_at  timestamptz NOT NULL,
    due_at      timestamptz NOT NULL,
    purged_at   timestamptz
);
CREATE INDEX deleted_owners_due_idx ON deleted_owners (due_at) WHERE purged_at IS NULL;
