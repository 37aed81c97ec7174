"""Adapters of providers: Postgres, Redis, Kafka, S3 and HTTP clients."""
