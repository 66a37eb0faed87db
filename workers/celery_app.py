"""The worker's Celery app: `celery -A workers.celery_app worker` or `catalogctl worker`."""

from celery.signals import worker_process_init

from catalog.queue import make_celery

celery = make_celery()
celery.conf.include = ["workers.tasks"]


@worker_process_init.connect
def _warm_up(**_kwargs) -> None:
    """Each pool process connects as it starts, not during its first deployment."""
    from workers.runtime import warm_up

    warm_up()
