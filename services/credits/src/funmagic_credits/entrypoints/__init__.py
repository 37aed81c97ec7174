"""Entrypoints of credits: Kafka subscriptions and HTTP routes."""
