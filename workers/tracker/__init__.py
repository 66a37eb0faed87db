"""The tracker wing: follow the engine's containers, keep records and statuses true, repair."""
