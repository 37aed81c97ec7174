-- The audit log of admin writes (funmagic_kit.audit): one row per admin action this service performed,
-- written in the transaction that made the change. Never updated; `changes` holds no secret values.
-- Which service recorded it is the database it is in (the listing says so).
CREATE TABLE admin_audit (
    id uuid PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor_id text,
    action text NOT NULL,
    subject_type text NOT NULL,
    subject_id text NOT NULL,
    changes jsonb NOT NULL DEFAULT '{}'::jsonb,
    reason text
);

-- Newest first, keyset by (at, id); the filters narrow that walk.
CREATE INDEX admin_audit_newest ON admin_audit (at DESC, id DESC);
CREATE INDEX admin_audit_subject ON admin_audit (subject_type, subject_id, at DESC);
CREATE INDEX admin_audit_actor ON admin_audit (actor_id, at DESC);
