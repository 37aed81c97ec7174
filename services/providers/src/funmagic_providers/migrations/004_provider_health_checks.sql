-- Every health check of a provider, manual or periodic: when, whether it passed, how long it took and,
-- for a failure, why in words the service chose (never a key, never a provider's answer body).
-- provider_id names a row of `providers` (scope 'web') or `admin_providers` (scope 'admin').
CREATE TABLE provider_health_checks (
    id           uuid PRIMARY KEY,
    scope        text NOT NULL CHECK (scope IN ('web', 'admin')),
    provider_id  uuid NOT NULL,
    checked_at   timestamptz NOT NULL,
    healthy      boolean NOT NULL,
    latency_ms   integer NOT NULL CHECK (latency_ms >= 0),
    error        text CHECK (length(error) <= 300),
    trigger      text NOT NULL CHECK (trigger IN ('manual', 'periodic')),
    CHECK (healthy = (error IS NULL))
);
-- The history of one provider, newest first, cut into keyset pages by (checked_at, id).
CREATE INDEX provider_health_checks_history_idx
    ON provider_health_checks (scope, provider_id, checked_at DESC, id DESC);
