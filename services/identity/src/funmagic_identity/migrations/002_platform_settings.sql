-- Platform settings identity keeps for the gateway, which has no database of its own: one row per setting
-- (`rate-limit`: the API's rate limits and tiers), the whole document as the gateway validated it, and who
-- changed it last. Redis only caches them, so a Redis restart no longer resets them.
CREATE TABLE platform_settings (
    name        text PRIMARY KEY,
    document    jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    updated_at  timestamptz NOT NULL,
    updated_by  text
);
