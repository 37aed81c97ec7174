"""The providers service: provider registry, rate limiter, step execution."""
