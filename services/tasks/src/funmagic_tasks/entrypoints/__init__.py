"""Entrypoints of tasks: Kafka subscriptions and HTTP routes."""
