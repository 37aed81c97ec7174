"""SQL migrations of the kit's own tables (outbox, processed_events), applied to every service database."""
