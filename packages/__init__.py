"""The `catalog/v1` package format: manifest schema, archive safety, templating.

This library imports neither Flask nor the database, so the API, the workers
and the CLI all judge a package by the same rules.
"""
