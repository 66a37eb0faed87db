"""The periodic resync: nothing queued or running is lost with a message or a worker."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, or_, select

from catalog.models import Deployment, Environment, EnvironmentLease, Host, Task, WebhookDelivery
from catalog.models.common import utcnow
from catalog.models.deployment import IN_FLIGHT, TaskStatus
from catalog.models.environment import EnvironmentStatus
from catalog.queue import DEPLOY_TASK, HARD_LIMIT_GRACE, TEARDOWN_TASK, Publisher
from catalog.services.webhooks import publish
from workers.runtime import Runtime

# A queued deployment published more recently than this is still on its way to a worker
# (the default of CATALOG_RESYNC_STALE_SECONDS).
STALE_AFTER = timedelta(seconds=15)


def republish_deliveries(rt: Runtime, celery) -> int:
    """Publish again the webhook deliveries never attempted long after they were added (their
    message was lost with the broker). A receiver may see a delivery twice: each carries
    its id (X-Catalog-Delivery) to tell."""
    cutoff = utcnow() - timedelta(seconds=rt.settings.resync_stale_seconds)
    with rt.sessions() as session:
        lost = session.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempts == 0,
                WebhookDelivery.created_at < cutoff,
            )
        ).all()
    publish(Publisher(celery), lost)
    return len(lost)


def fail_abandoned_actions(rt: Runtime) -> int:
    """Fail the action tasks still `running` past their hard time limit: the process that ran
    them was killed (by that limit, or with its worker), and nothing else would end them."""
    limit = float(rt.settings.action_time_limit_seconds)
    cutoff = utcnow() - timedelta(seconds=limit + HARD_LIMIT_GRACE)
    with rt.sessions() as session:
        abandoned = session.scalars(
            select(Task).where(Task.status == TaskStatus.RUNNING, Task.started_at < cutoff)
        ).all()
        for task in abandoned:
            task.status, task.finished_at = TaskStatus.FAILED, utcnow()
            task.error = "abandoned: the worker running it stopped or ran past its time limit"
        session.commit()
    return len(abandoned)


def republish_stale(rt: Runtime, celery) -> int:
    """Publish again what no worker is working on; duplicates are harmless (idempotent tasks)."""
    now = utcnow()
    stale_after = timedelta(seconds=rt.settings.resync_stale_seconds)
    publisher = Publisher(celery)
    free_lease = or_(
        EnvironmentLease.environment_id.is_(None),
        EnvironmentLease.owner.is_(None),
        EnvironmentLease.expires_at < now,
    )
    with rt.sessions() as session:
        stale = session.execute(
            select(Deployment, Host.name)
            .join(Environment, Environment.id == Deployment.environment_id)
            .outerjoin(Host, Host.id == Environment.host_id)
            .outerjoin(
                EnvironmentLease, EnvironmentLease.environment_id == Deployment.environment_id
            )
            .where(
                Deployment.status.in_(IN_FLIGHT),
                or_(
                    Deployment.published_at.is_(None),
                    Deployment.published_at < now - stale_after,
                ),
                free_lease,
            )
        ).all()
        deleting = session.execute(
            select(Environment.id, Host.name)
            .outerjoin(Host, Host.id == Environment.host_id)
            .outerjoin(EnvironmentLease, EnvironmentLease.environment_id == Environment.id)
            .where(and_(Environment.status == EnvironmentStatus.DELETING, free_lease))
        ).all()
        count = 0
        for deployment, host in stale:
            if publisher.send(
                DEPLOY_TASK, deployment.environment_id, deployment.revision, host=host
            ):
                deployment.published_at = now
                count += 1
        for env_id, host in deleting:
            count += publisher.send(TEARDOWN_TASK, env_id, host=host)
        session.commit()
    return count
