-- What an asset is (image, 3D model, point cloud or other), derived from its MIME type and stored so that a
-- user's list filters and counts by kind in SQL. The rule is `asset_kind` in domain/assets.py; existing rows
-- are backfilled with the same rule here.
ALTER TABLE assets ADD COLUMN kind text;
UPDATE assets SET kind = CASE
    WHEN lower(btrim(split_part(mime_type, ';', 1))) LIKE 'image/%' THEN 'image'
    WHEN lower(btrim(split_part(mime_type, ';', 1))) IN ('model/gltf-binary', 'model/gltf+json', 'model/obj')
        THEN 'model'
    WHEN lower(btrim(split_part(mime_type, ';', 1))) IN ('application/x-ply', 'model/ply') THEN 'pointcloud'
    ELSE 'other'
END;
ALTER TABLE assets ALTER COLUMN kind SET NOT NULL;
ALTER TABLE assets ADD CONSTRAINT assets_kind_check CHECK (kind IN ('image', 'model', 'pointcloud', 'other'));
CREATE INDEX assets_owner_kind_idx ON assets (user_id, kind, created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- The outputs of a task go when the task is deleted (TaskDeleted): found by task.
CREATE INDEX assets_task_idx ON assets (task_id) WHERE deleted_at IS NULL AND task_id IS NOT NULL;

-- Tasks known to be deleted: an output stored for one of them afterwards (a provider call that was already
-- finishing) is refused instead of outliving its task.
CREATE TABLE deleted_tasks (
    task_id     text PRIMARY KEY,
    user_id     text NOT NULL,
    deleted_at  timestamptz NOT NULL
);
