"""Celery tasks: thin, take ids, re-read the rows, and do nothing when already done."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from catalog.models import Environment, Host, Task
from catalog.queue import (
    ACTION_TASK,
    DEPLOY_TASK,
    RESYNC_TASK,
    TEARDOWN_TASK,
    WEBHOOK_TASK,
    Publisher,
)
from workers import actions, webhooks
from workers.celery_app import celery
from workers.deploy.execution import DatabaseAway
from workers.deploy.run import LeaseBusy, deploy
from workers.engine import EngineError
from workers.resync import fail_abandoned_actions, republish_deliveries, republish_stale
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
    a resync noticed (never, for an action)."""
    try:
        return runtime()
    except EngineError as exc:
        log.warning("the Docker engine is unreachable, retrying in %.0f s: %s",
                    ENGINE_RETRY_SECONDS, exc)  # fmt: skip
        raise task.retry(countdown=ENGINE_RETRY_SECONDS) from None


def _passed_on(task, rt, env_id: str | None, *args) -> bool:
    """Whether the task was sent on to its environment's host's queue, that host not being
    this worker's (an older API, or a worker started for another host, sent it here);
    retried later when the database or the broker does not answer."""
    if env_id is None:
        return False
    try:
        with rt.sessions() as session:
            found = session.execute(
                select(Host.name)
                .select_from(Environment)
                .outerjoin(Host, Host.id == Environment.host_id)
                .where(Environment.id == env_id)
            ).first()
        mine = rt.settings.host_name or None
        if found is None or found.name == mine:  # by name: queues are named by host name
            return False  # here, or gone (the task itself finds nothing to do)
        log.warning("%s of %s belongs to host %s's workers; sending it there",
                    task.name, env_id, found.name or "(default)")  # fmt: skip
        sent = Publisher(celery).send(task.name, *args, host=found.name)
    except DBAPIError as exc:
        log.warning("database away while checking where %s runs (%s); retrying", env_id, exc)
        raise task.retry(countdown=DATABASE_RETRY_SECONDS) from None
    if not sent:
        raise task.retry(countdown=ENGINE_RETRY_SECONDS)
    return True


@celery.task(name=DEPLOY_TASK, bind=True, max_retries=None, acks_late=True)
def deploy_environment(self, env_id: str, revision: int) -> str:
    """Bring environment `env_id` to `revision`; retried while another worker holds it."""
    rt = _runtime_or_retry(self)
    try:
        if _passed_on(self, rt, env_id, env_id, revision):
            return "rerouted"
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
        if _passed_on(self, rt, env_id, env_id):
            return "rerouted"
        return teardown(rt, env_id)
    except TeardownBusy:
        raise self.retry(countdown=BUSY_RETRY_SECONDS) from None


@celery.task(name=ACTION_TASK, bind=True, max_retries=None, acks_late=True)
def run_action(self, task_id: str) -> str:
    """Carry out an action's task; a built-in one waits while a deployment holds the env."""
    rt = _runtime_or_retry(self)
    try:
        with rt.sessions() as session:
            env_id = session.scalar(select(Task.environment_id).where(Task.id == task_id))
    except DBAPIError:
        raise self.retry(countdown=DATABASE_RETRY_SECONDS) from None
    try:
        if _passed_on(self, rt, env_id, task_id):
            return "rerouted"
        return actions.run(rt, task_id)
    except actions.ActionBusy:
        raise self.retry(countdown=BUSY_RETRY_SECONDS) from None


@celery.task(name=WEBHOOK_TASK, bind=True, max_retries=None, acks_late=True)
def deliver_webhook(self, delivery_id: str) -> str:
    """One attempt at a webhook delivery; the next is a retry after its backoff."""
    rt = _runtime_or_retry(self)
    wait = webhooks.deliver(rt.sessions, delivery_id, rt.settings, rt.secrets)
    if wait is not None:
        raise self.retry(countdown=wait)
    return "done"


@celery.task(name=RESYNC_TASK, acks_late=True)
def resync() -> int:
    """Re-publish deployments whose message was lost or whose worker died, and webhook
    deliveries whose message was lost; fail the action tasks whose worker died."""
    rt = runtime()
    return (
        republish_stale(rt, celery) + republish_deliveries(rt, celery) + fail_abandoned_actions(rt)
    )
