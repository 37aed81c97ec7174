-- Storage owns the asset records and the uploads that have not been confirmed yet.
CREATE TABLE assets (
    id           uuid PRIMARY KEY,
    user_id      text NOT NULL,
    bucket       text NOT NULL,
    storage_key  text NOT NULL,
    visibility   text NOT NULL CHECK (visibility IN ('public', 'private', 'admin-private')),
    module       text NOT NULL,
    filename     text NOT NULL,
    mime_type    text NOT NULL,
    size         bigint NOT NULL CHECK (size >= 0),
    task_id      text,
    public_key   text,                 -- the published copy in the public bucket, while published
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    deleted_at   timestamptz
);
CREATE INDEX assets_owner_idx ON assets (user_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE pending_uploads (
    id            uuid PRIMARY KEY,
    user_id       text NOT NULL,
    bucket        text NOT NULL,
    storage_key   text NOT NULL,
    visibility    text NOT NULL,
    module        text NOT NULL,
    filename      text NOT NULL,
    content_type  text NOT NULL,
    size          bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    completed_at  timestamptz,
    asset_id      uuid
);
CREATE INDEX pending_uploads_expiry_idx ON pending_uploads (expires_at) WHERE completed_at IS NULL;
