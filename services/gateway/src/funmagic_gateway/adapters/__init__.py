"""Adapters of gateway: Postgres, Redis, Kafka, S3 and HTTP clients."""
