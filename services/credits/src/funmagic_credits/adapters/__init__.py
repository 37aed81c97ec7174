"""Adapters of credits: Postgres, Redis, Kafka, S3 and HTTP clients."""
