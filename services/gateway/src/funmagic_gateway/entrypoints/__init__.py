"""Entrypoints of gateway: Kafka subscriptions and HTTP routes."""
