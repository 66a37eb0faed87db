"""The worker's Celery app: `celery -A workers.celery_app worker` or `catalogctl worker`."""

from catalog.queue import make_celery

celery = make_celery()
celery.conf.include = ["workers.tasks"]
