-- Identity owns users, sessions, accounts (OAuth), verifications, and its token signing keys.
CREATE TABLE users (
    id               uuid PRIMARY KEY,
    email            text NOT NULL,
    name             text NOT NULL,
    image            text,
    role             text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin', 'super_admin')),
    email_verified   boolean NOT NULL DEFAULT false,
    password_hash    text,
    disabled_at      timestamptz,
    disabled_reason  text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz
);
-- Emails are stored normalised; a deleted account frees its address.
CREATE UNIQUE INDEX users_email_key ON users (email) WHERE deleted_at IS NULL;
CREATE INDEX users_created_at_idx ON users (created_at DESC, id DESC);
CREATE INDEX users_role_idx ON users (role) WHERE role <> 'user';

CREATE TABLE sessions (
    id                 uuid PRIMARY KEY,
    user_id            uuid NOT NULL REFERENCES users (id),
    expires_at         timestamptz NOT NULL,
    ip_address         text,
    user_agent         text,
    created_at         timestamptz NOT NULL,
    last_refreshed_at  timestamptz NOT NULL,
    revoked_at         timestamptz,
    revoked_reason     text
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at DESC);

-- Every refresh token ever issued (as a SHA-256): the current one has rotated_at NULL. Presenting a rotated
-- one again means it leaked, and revokes the session.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id),
    created_at  timestamptz NOT NULL,
    rotated_at  timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE accounts (
    id                uuid PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES users (id),
    provider_id       text NOT NULL,
    account_id        text NOT NULL,
    -- encrypted with SECRET_KEY (AES-GCM); never returned by the API
    access_token      bytea,
    refresh_token     bytea,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    UNIQUE (provider_id, account_id)
);
CREATE INDEX accounts_user_idx ON accounts (user_id);

-- Single-use, expiring tokens for email verification and password reset, stored as SHA-256 only.
CREATE TABLE verifications (
    id           uuid PRIMARY KEY,
    identifier   text NOT NULL,           -- '<purpose>:<user id>'
    value        bytea NOT NULL UNIQUE,   -- sha256 of the token sent by mail
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    consumed_at  timestamptz
);
CREATE INDEX verifications_identifier_idx ON verifications (identifier);

CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    private_key  bytea NOT NULL,          -- PEM, encrypted with SECRET_KEY
    public_jwk   jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    retired_at   timestamptz
);

-- Mail waits here until delivered (written in the same transaction as what caused it, so none is lost).
-- The body is encrypted: it carries single-use links. With the dev sink it stays readable to developers.
CREATE TABLE outgoing_mail (
    id          uuid PRIMARY KEY,
    recipient   text NOT NULL,
    subject     text NOT NULL,
    body        bytea,
    purpose     text NOT NULL,
    created_at  timestamptz NOT NULL,
    sent_at     timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text
);
CREATE INDEX outgoing_mail_unsent_idx ON outgoing_mail (created_at) WHERE sent_at IS NULL;
CREATE INDEX outgoing_mail_recipient_idx ON outgoing_mail (recipient, created_at DESC);
