"""`catalogctl`: the command-line client of the catalog."""
