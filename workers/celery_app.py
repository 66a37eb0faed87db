"""The worker's Celery app: `celery -A workers.celery_app worker` or `catalogctl worker`."""

from celery.signals import task_postrun, task_prerun, worker_process_init

from catalog import logformat
from catalog.queue import DEPLOY_TASK, TEARDOWN_TASK, make_celery

celery = make_celery()
celery.conf.include = ["workers.tasks"]

# Tasks whose first argument is an environment's id (and, for a deploy, the second its revision).
_OF_AN_ENVIRONMENT = frozenset({DEPLOY_TASK, TEARDOWN_TASK})


@worker_process_init.connect
def _warm_up(**_kwargs) -> None:
    """Each pool process connects as it starts, not during its first deployment."""
    from workers.runtime import warm_up

    warm_up()


@task_prerun.connect
def _log_context(task=None, args=None, **_kwargs) -> None:
    """The task's log lines carry the API request that published it, and its environment."""
    logformat.REQUEST_ID.set(getattr(task.request, logformat.REQUEST_ID_HEADER, None))
    of_env = task.name in _OF_AN_ENVIRONMENT and args
    logformat.ENVIRONMENT_ID.set(args[0] if of_env else None)
    revision = args[1] if of_env and task.name == DEPLOY_TASK and len(args) > 1 else None
    logformat.REVISION.set(revision)


@task_postrun.connect
def _forget_log_context(**_kwargs) -> None:
    for variable in (logformat.REQUEST_ID, logformat.ENVIRONMENT_ID, logformat.REVISION):
        variable.set(None)
