-- How many times a tool was used (the seed's `usageCount`, never counted by the original): one per
-- top-level task of the tool that started (credits reserved), counted in the transaction that starts it.
ALTER TABLE tools ADD COLUMN usage_count bigint NOT NULL DEFAULT 0;
