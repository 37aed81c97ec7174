-- The avatar a user chose (a storage asset of the `avatar` module, checked by the gateway against storage
-- before it is set). `image` stays what an OAuth provider gave; the chosen avatar is preferred when shown.
ALTER TABLE users ADD COLUMN IF NOT EXISTS avatar_asset_id uuid;
