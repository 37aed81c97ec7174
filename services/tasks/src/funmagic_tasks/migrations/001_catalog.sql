-- The tool catalog and the site's banners. Soft delete everywhere (`deleted_at`): a name or slug is unique
-- among live rows only, so it can be used again once its row is deleted. Base texts are English;
-- `translations` holds per-locale overrides ({"de": {"title": …}}), checked by the domain before writing.
CREATE TABLE tool_types (
    id            uuid PRIMARY KEY,
    name          text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    display_name  text NOT NULL,
    description   text,
    icon          text,
    color         text,
    sort_order    integer NOT NULL DEFAULT 0,
    is_active     boolean NOT NULL DEFAULT true,
    translations  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz
);
CREATE UNIQUE INDEX tool_types_name_idx ON tool_types (name) WHERE deleted_at IS NULL;
CREATE INDEX tool_types_order_idx ON tool_types (sort_order, name) WHERE deleted_at IS NULL;

CREATE TABLE tools (
    id                  uuid PRIMARY KEY,
    slug                text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    title               text NOT NULL,
    description         text NOT NULL DEFAULT '',
    thumbnail_asset_id  uuid,
    tool_type_id        uuid NOT NULL REFERENCES tool_types (id),
    config              jsonb NOT NULL,          -- {steps, styleReferences, pipeline}, canonical form
    credits_cost        integer NOT NULL CHECK (credits_cost >= 0),  -- the sum of the steps' costs
    is_active           boolean NOT NULL DEFAULT true,
    is_featured         boolean NOT NULL DEFAULT false,
    translations        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    deleted_at          timestamptz
);
CREATE UNIQUE INDEX tools_slug_idx ON tools (slug) WHERE deleted_at IS NULL;
CREATE INDEX tools_type_idx ON tools (tool_type_id) WHERE deleted_at IS NULL;
-- The public listing's order: featured first, then by slug (keyset pages on the same expression).
CREATE INDEX tools_public_idx ON tools ((NOT is_featured), slug) WHERE deleted_at IS NULL AND is_active;

CREATE TABLE banners (
    id                  uuid PRIMARY KEY,
    title               text NOT NULL,
    description         text,
    thumbnail_asset_id  uuid,
    link                text,                    -- https://…, http://… or a path of the site; checked by the domain
    link_text           text,
    link_target         text NOT NULL DEFAULT '_self' CHECK (link_target IN ('_self', '_blank')),
    type                text NOT NULL DEFAULT 'main' CHECK (type IN ('main', 'side')),
    position            integer NOT NULL DEFAULT 0,
    badge               text,
    badge_color         text,
    is_active           boolean NOT NULL DEFAULT true,
    starts_at           timestamptz,             -- shown while starts_at <= now < ends_at; a null bound is open
    ends_at             timestamptz,
    translations        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    deleted_at          timestamptz,
    CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);
-- Main banners first, then by position (keyset pages on the same expression).
CREATE INDEX banners_order_idx ON banners ((CASE WHEN type = 'main' THEN 0 ELSE 1 END), position, id)
    WHERE deleted_at IS NULL;
