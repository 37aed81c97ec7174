"""Entrypoints of tasks: HTTP routes, Kafka subscriptions and operator commands."""
