-- The admin overview's figures: tasks that ended in a period are found by `finished_at` (those created in a
-- period by `tasks_listing_idx` on `created_at`). The status rides along, so the count reads the index only.
CREATE INDEX tasks_finished_idx ON tasks (finished_at) INCLUDE (status) WHERE finished_at IS NOT NULL;
