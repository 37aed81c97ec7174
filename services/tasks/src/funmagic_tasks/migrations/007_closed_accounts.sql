-- Accounts identity closed (UserDisabled, UserDeleted), so that tasks refuses their new tasks even when a
-- request was authenticated just before the account closed. No row: the account is open. A disabled account
-- enabled again loses its row; a deleted one keeps it for good.
CREATE TABLE closed_accounts (
    user_id    text PRIMARY KEY,
    closure    text NOT NULL CHECK (closure IN ('disabled', 'deleted')),
    closed_at  timestamptz NOT NULL
);

