"""The Celery app shared by the API (publishing) and the workers (consuming).

Delivery is at-least-once: late acks, requeue when a worker dies, prefetch 1,
JSON only, publisher confirms and a bounded publish time. A message only says
"bring environment E to revision N"; the database is the truth.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import Celery
from kombu.exceptions import OperationalError

from catalog import config as catalog_config
from catalog import logformat
from catalog.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DEPLOY_TASK = "workers.tasks.deploy_environment"
TEARDOWN_TASK = "workers.tasks.delete_environment"
RESYNC_TASK = "workers.tasks.resync"
ACTION_TASK = "workers.tasks.run_action"
WEBHOOK_TASK = "workers.tasks.deliver_webhook"

PUBLISH_TIMEOUT = 5.0  # seconds a publish may take before the API gives up
# Task -> the setting of its time limit, and how much later Celery raises SoftTimeLimitExceeded
# in it (the task fails cleanly). A deployment checks its own deadline (the setting) as it
# goes, so its soft limit is only a backstop; teardowns and actions have theirs at the limit.
_TIME_LIMITS = {
    DEPLOY_TASK: (lambda settings: settings.deploy_time_limit_seconds, 30.0),
    TEARDOWN_TASK: (lambda settings: settings.teardown_time_limit_seconds, 0.0),
    ACTION_TASK: (lambda settings: settings.action_time_limit_seconds, 0.0),
    # One webhook attempt: its connect and reads are bounded, a receiver that trickles bytes
    # is not; this ends it.
    WEBHOOK_TASK: (lambda settings: settings.webhook_timeout_seconds * 3, 0.0),
}
# After the soft limit: Celery kills the task's process (the hard limit).
HARD_LIMIT_GRACE = 120.0


def host_queue(base: str, host: str | None) -> str:
    """The queue of a Docker host's workers: TASK_QUEUE for the default engine (no host),
    `<TASK_QUEUE>.host.<name>` for a registered host."""
    return base if host is None else f"{base}.host.{host}"


def maintenance_queue(base: str) -> str:
    """The periodic resync's queue, which every worker consumes besides its host's."""
    return f"{base}.maintenance"


log = logging.getLogger(__name__)


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or catalog_config.current()
    app = Celery("catalog", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        task_default_queue=settings.task_queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(settings.broker_url),
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        broker_connection_timeout=PUBLISH_TIMEOUT,
        beat_schedule_filename=os.path.join(settings.catalog_home, "celerybeat-schedule"),
        beat_schedule=_beat_schedule(settings),
        task_annotations=task_time_limits(settings),
    )
    return app


def task_time_limits(settings: Settings) -> dict[str, dict[str, float]]:
    """Celery's soft and hard time limits of the deploy, teardown, action and webhook tasks."""
    limits = {}
    for task, (limit_of, margin) in _TIME_LIMITS.items():
        soft = limit_of(settings) + margin
        limits[task] = {"soft_time_limit": soft, "time_limit": soft + HARD_LIMIT_GRACE}
    return limits


def _beat_schedule(settings: Settings) -> dict[str, dict]:
    every = settings.resync_seconds
    return {
        "resync": {
            "task": RESYNC_TASK,
            "schedule": every,
            # Any worker takes it, whichever host it serves; after an outage, one runs.
            "options": {"queue": maintenance_queue(settings.task_queue), "expires": every},
        }
    }


def _transport_options(broker_url: str) -> dict[str, Any]:
    if broker_url.startswith(("amqp", "pyamqp")):
        # Publisher confirms: a publish returns only once RabbitMQ has the message.
        return {"confirm_publish": True, "max_retries": 3, "interval_start": 0,
                "interval_step": 0.5, "interval_max": 1}  # fmt: skip
    return {}


class Publisher:
    """Publishes task messages; used by services only after their transaction commits."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    def send(
        self, name: str, *args: Any, host: str | None = None, maintenance: bool = False
    ) -> bool:
        """True when the broker confirmed the message; False when it could not be reached.

        The message goes to the queue of the workers of `host` (None: the default engine's),
        or with `maintenance` to the queue every worker consumes (work of no engine's).

        A False is never fatal: the periodic resync re-publishes what is still queued.
        Bounded by PUBLISH_TIMEOUT in all: a broker that accepted the connection but
        stopped answering (partition, resource alarm) would otherwise hold the caller
        forever waiting for the confirm, and kombu's reconnect retries add up. A publish
        that is confirmed after the deadline is only a duplicate for the idempotent task.
        """
        outcome: dict[str, BaseException | None] = {}
        # The request's id goes with the task, for its worker's log lines.
        request_id = logformat.REQUEST_ID.get()
        headers = {logformat.REQUEST_ID_HEADER: request_id} if request_id else None
        base = self.celery.conf.task_default_queue
        queue = maintenance_queue(base) if maintenance else host_queue(base, host)

        def publish() -> None:
            try:
                # Each blocking step is bounded too, so an abandoned attempt ends on its own.
                self.celery.send_task(
                    name, args=list(args), queue=queue, headers=headers,
                    timeout=PUBLISH_TIMEOUT, confirm_timeout=PUBLISH_TIMEOUT,
                )  # fmt: skip
                outcome["error"] = None
            except BaseException as exc:  # handed to the caller's thread below
                outcome["error"] = exc

        thread = threading.Thread(target=publish, name=f"publish-{name}", daemon=True)
        thread.start()
        thread.join(PUBLISH_TIMEOUT)
        if "error" not in outcome:
            log.warning("publishing %s took over %.0f s; left to the resync", name, PUBLISH_TIMEOUT)
            return False
        error = outcome["error"]
        if isinstance(error, OperationalError | OSError | TimeoutError):
            return False
        if error is not None:
            raise error
        return True


def commit_then_publish(
    session: Session,
    publisher: Publisher,
    name: str,
    *args: Any,
    host: str | None = None,
    sent: Callable[[], None] | None = None,
    unsent: Callable[[], None] | None = None,
) -> bool:
    """Commit, then publish task `name`: never inside an open transaction, so a worker never
    reads a row that is not there yet. True when the broker took the message.

    The rule for a broker that does not answer: the committed rows say what happens next,
    so the API's answer stays true. `unsent` (or, once confirmed, `sent`) writes that on
    them, committed in turn: a deployment waits for the resync, an action fails with the
    reason. Without it the rows are already right (a teardown: the resync sends `deleting`
    environments again).
    """
    session.commit()
    published = publisher.send(name, *args, host=host)
    record = sent if published else unsent
    if record is not None:
        record()
        session.commit()
    return published
