"""Entrypoints of storage: Kafka subscriptions and HTTP routes."""
