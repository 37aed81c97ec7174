-- The ledger: an append-only event store (one stream per user), its snapshots, and the read projections.
CREATE TABLE ledger_events (
    position         bigserial PRIMARY KEY,      -- global order: rebuilds replay by it
    event_id         uuid NOT NULL UNIQUE,       -- also the envelope id published on credits.events
    user_id          text NOT NULL,
    version          integer NOT NULL,
    event_type       text NOT NULL,
    schema_version   integer NOT NULL DEFAULT 1,
    data             jsonb NOT NULL,
    -- The cause that makes a command "the same" again (reserve:<task>, purchase:<session>…), on the first
    -- event of each decision only.
    idempotency_key  text,
    occurred_at      timestamptz NOT NULL,
    UNIQUE (user_id, version)                    -- optimistic concurrency: one writer per version
);
CREATE UNIQUE INDEX ledger_events_cause_key ON ledger_events (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The latest state of each stream, written with its events: decisions lock this row and never replay.
CREATE TABLE ledger_accounts (
    user_id  text PRIMARY KEY,
    version  integer NOT NULL,
    state    jsonb NOT NULL
);

-- Projections (rebuilt from ledger_events by `python -m funmagic_credits rebuild`).
CREATE TABLE credits (
    user_id           text PRIMARY KEY,
    balance           bigint NOT NULL CHECK (balance >= 0),
    reserved_balance  bigint NOT NULL CHECK (reserved_balance >= 0),
    lifetime_earned   bigint NOT NULL,
    lifetime_spent    bigint NOT NULL,
    adjustments       bigint NOT NULL,
    version           integer NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE credit_transactions (
    position       bigint PRIMARY KEY,           -- the ledger event it comes from
    user_id        text NOT NULL,
    type           text NOT NULL CHECK (type IN ('purchase', 'spend', 'refund', 'bonus', 'admin_adjust')),
    amount         bigint NOT NULL,
    balance_after  bigint NOT NULL,
    reference_id   text,
    description    text NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX credit_transactions_user_idx ON credit_transactions (user_id, position DESC);

CREATE TABLE credit_packages (
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    credits          integer NOT NULL CHECK (credits > 0),
    price_minor      integer NOT NULL CHECK (price_minor >= 0),
    currency         text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    stripe_price_id  text,
    is_active        boolean NOT NULL DEFAULT true,
    sort_order       integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz
);

CREATE TABLE purchases (
    session_id    text PRIMARY KEY,              -- Stripe Checkout Session id
    user_id       text NOT NULL,
    package_id    uuid NOT NULL REFERENCES credit_packages (id),
    credits       integer NOT NULL,
    price_minor   integer NOT NULL,
    currency      text NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'completed')),
    created_at    timestamptz NOT NULL,
    completed_at  timestamptz
);
CREATE INDEX purchases_user_idx ON purchases (user_id, created_at DESC);

-- Stripe events already handled: a redelivered webhook changes nothing.
CREATE TABLE stripe_events (
    event_id     text PRIMARY KEY,
    type         text NOT NULL,
    received_at  timestamptz NOT NULL
);
