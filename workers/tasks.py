"""Celery tasks: thin, take ids, re-read the rows, and do nothing when already done."""

from __future__ import annotations

import logging

from docker.errors import DockerException
from sqlalchemy.exc import DBAPIError

from catalog.queue import ACTION_TASK, DEPLOY_TASK, RESYNC_TASK, TEARDOWN_TASK
from workers import actions
from workers.celery_app import celery
from workers.deploy import DatabaseAway, LeaseBusy, deploy
from workers.resync import republish_stale
from workers.runtime import runtime
from workers.teardown import TeardownBusy
from workers.teardown import delete_environment as teardown

log = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 1.0
DATABASE_RETRY_SECONDS = 2.0
ENGINE_RETRY_SECONDS = 2.0


def _runtime_or_retry(task):
    """The worker's runtime; while the Docker engine is unreachable (restarting), the task is
    retried instead of failing: a failed task is acked, and its message would be lost until
    a resync noticed."""
    try:
        return runtime()
    except DockerException as exc:
        log.warning("the Docker engine is unreachable, retrying in %.0f s: %s",
                    ENGINE_RETRY_SECONDS, exc)  # fmt: skip
        raise task.retry(countdown=ENGINE_RETRY_SECONDS) from None


@celery.task(name=DEPLOY_TASK, bind=True, max_retries=None, acks_late=True)
def deploy_environment(self, env_id: str, revision: int) -> str:
    """Bring environment `env_id` to `revision`; retried while another worker holds it."""
    rt = _runtime_or_retry(self)
    try:
        return deploy(rt, env_id, revision)
    except LeaseBusy:
        raise self.retry(countdown=BUSY_RETRY_SECONDS) from None
    except (DatabaseAway, DBAPIError) as exc:
        log.warning("database away during %s@%s (%s); retrying", env_id, revision, exc)
        raise self.retry(countdown=DATABASE_RETRY_SECONDS) from None


@celery.task(name=TEARDOWN_TASK, bind=True, max_retries=None, acks_late=True)
def delete_environment(self, env_id: str) -> str:
    """Remove every container, network and volume of an environment, then its rows."""
    rt = _runtime_or_retry(self)
    try:
        return teardown(rt, env_id)
    except TeardownBusy:
        raise self.retry(countdown=BUSY_RETRY_SECONDS) from None


@celery.task(name=ACTION_TASK, bind=True, max_retries=None, acks_late=True)
def run_action(self, task_id: str) -> str:
    """Carry out an action's task; a built-in one waits while a deployment holds the env."""
    try:
        return actions.run(runtime(), task_id)
    except actions.ActionBusy:
        raise self.retry(countdown=BUSY_RETRY_SECONDS) from None


@celery.task(name=RESYNC_TASK, acks_late=True)
def resync() -> int:
    """Re-publish deployments whose message was lost or whose worker died."""
    return republish_stale(runtime(), celery)
