"""Adapters of storage: Postgres, Redis, Kafka, S3 and HTTP clients."""
