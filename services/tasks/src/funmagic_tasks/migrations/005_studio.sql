-- The admin AI studio (seed: admin_chats, admin_messages). A chat belongs to one admin; `project` is a name
-- that groups chats. A message is the admin's prompt (role user) or a reply (role assistant), which is work
-- like a task step: providers runs it under the admin scope with the reply's id as the step's task id, so
-- the reply's id is also "the job that runs it".
CREATE TABLE admin_chats (
    id                 uuid PRIMARY KEY,
    admin_id           uuid NOT NULL,
    title              text NOT NULL,
    project            text,
    provider           text NOT NULL,
    model              text NOT NULL,
    system_prompt      text,
    store              boolean NOT NULL DEFAULT true,
    openai_response_id text,              -- the provider's id of the chat's last text turn
    archived_at        timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
-- My chats, most recently active first (keyset on updated_at, id), and my projects.
CREATE INDEX admin_chats_by_admin_idx ON admin_chats (admin_id, updated_at DESC, id DESC);
CREATE INDEX admin_chats_active_idx ON admin_chats (updated_at DESC, id DESC);

CREATE TABLE admin_messages (
    id               uuid PRIMARY KEY,
    seq              bigint GENERATED ALWAYS AS IDENTITY,  -- the order messages were written in
    chat_id          uuid NOT NULL REFERENCES admin_chats (id) ON DELETE CASCADE,
    admin_id         uuid NOT NULL,
    role             text NOT NULL CHECK (role IN ('user', 'assistant')),
    kind             text NOT NULL CHECK (kind IN ('text', 'image')),
    content          text NOT NULL,
    quoted_image_ids uuid[] NOT NULL DEFAULT '{}',
    provider         text NOT NULL,
    model            text NOT NULL,
    input            jsonb NOT NULL DEFAULT '{}',   -- the options sent with the prompt
    images           jsonb NOT NULL DEFAULT '[]',   -- [{asset_id, role}] of a completed reply
    status           text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    batch_id         uuid,                           -- a reply: the prompt it answers
    variant          smallint,
    response_id      text,
    usage            jsonb,                          -- {input_tokens, output_tokens, total_tokens}
    error_code       text,
    error_message    text,
    idempotency_key  text,
    created_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    UNIQUE (admin_id, idempotency_key)
);
-- A chat's messages newest first (keyset on seq: a prompt and its replies are written together, in order).
CREATE INDEX admin_messages_chat_idx ON admin_messages (chat_id, seq DESC);
CREATE INDEX admin_messages_active_idx ON admin_messages (chat_id) WHERE status IN ('pending', 'running');
