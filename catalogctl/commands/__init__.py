"""The command groups of `catalogctl`, one module each."""
