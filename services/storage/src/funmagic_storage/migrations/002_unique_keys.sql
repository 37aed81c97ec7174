-- One object per key: an upload (or a server-side write) reserves its key here before anything is written.
-- Completed rows stay, so a key is never handed out twice.
CREATE UNIQUE INDEX pending_uploads_key ON pending_uploads (bucket, storage_key);
