"""Celery workers: deployment planner, executor, Docker driver and tracker."""
