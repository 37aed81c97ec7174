"""The identity service: accounts, sessions, OAuth, roles."""
