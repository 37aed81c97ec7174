-- The second part of a two-part credential (Tencent Cloud's SecretKey beside its SecretId, which is the
-- row's api_key): sealed like the key, under a master key, bound to the row id with a purpose of its own so
-- the two ciphertexts cannot be swapped; shown to admins only as a hint.
ALTER TABLE providers
    ADD COLUMN api_secret_ciphertext bytea,
    ADD COLUMN api_secret_id text,
    ADD COLUMN api_secret_hint text,
    ADD CONSTRAINT providers_secret_sealed CHECK ((api_secret_ciphertext IS NULL) = (api_secret_id IS NULL));
ALTER TABLE admin_providers
    ADD COLUMN api_secret_ciphertext bytea,
    ADD COLUMN api_secret_id text,
    ADD COLUMN api_secret_hint text,
    ADD CONSTRAINT admin_providers_secret_sealed
        CHECK ((api_secret_ciphertext IS NULL) = (api_secret_id IS NULL));
