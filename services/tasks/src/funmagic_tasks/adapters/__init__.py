"""Adapters of tasks: Postgres, Redis, Kafka, S3 and HTTP clients."""
