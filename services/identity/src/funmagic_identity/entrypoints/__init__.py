"""Entrypoints of identity: Kafka subscriptions and HTTP routes."""
