-- Creations a client may retry (funmagic_kit.request_once): the first request with an Idempotency-Key claims
-- it here in the transaction that creates; a retry finds what it created, a key reused for another request is
-- refused. Scoped by kind of request and caller, so two admins' keys never meet. Admin creations are rare:
-- the rows are kept (a few per admin per day).
CREATE TABLE request_keys (
    scope text NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    resource_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
