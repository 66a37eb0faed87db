"""The catalog service: HTTP API, database models and domain services."""
