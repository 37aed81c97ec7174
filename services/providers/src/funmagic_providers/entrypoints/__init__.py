"""Entrypoints of providers: Kafka subscriptions and HTTP routes."""
