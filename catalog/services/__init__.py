"""Domain logic of the catalog; handlers call these, these call the models."""
