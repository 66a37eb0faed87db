"""Celery workers, in wings: deploy (plan, prepare, execute), tracker (follow, record, repair)
and engine (the one door to the container engine)."""
