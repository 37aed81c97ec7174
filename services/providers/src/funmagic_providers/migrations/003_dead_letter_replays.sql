-- Dead letters an admin replayed to their origin topic: one row per event, so an event is published again
-- once, however many times it is asked for (or was dead-lettered). Written in the transaction that puts
-- the original message in the outbox; which message of a dead-letter topic it came from is kept to show.
CREATE TABLE dead_letter_replays (
    event_id               uuid PRIMARY KEY,   -- the envelope's id: what consumers' inboxes dedupe on
    dead_letter_topic      text NOT NULL,
    dead_letter_partition  integer NOT NULL,
    dead_letter_offset     bigint NOT NULL,
    origin_topic           text NOT NULL,
    replayed_by            text NOT NULL,      -- the admin's user id
    replayed_at            timestamptz NOT NULL
);
