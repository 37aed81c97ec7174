"""Adapters of identity: Postgres, Redis, Kafka, S3 and HTTP clients."""
