"""Running a deployment: bring an environment to revision N, or undo every change.

New containers start beside the old ones (or stop-first for published ports),
must prove ready, and only then do the old generation and removed apps go.
Any failure, cancel or render error undoes everything this revision did; the
previous revision keeps serving. Every step is idempotent, so a redelivered
message or a second attempt after a killed worker converges without duplicates.
"""

from __future__ import annotations

import contextlib

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from catalog.models import Deployment
from catalog.models.common import utcnow
from catalog.models.deployment import IN_FLIGHT, DeploymentStatus
from workers import lease
from workers.deploy.execution import Execution
from workers.deploy.outcome import deployment_of
from workers.events import EventLog
from workers.runtime import Runtime, lease_seconds


class LeaseBusy(Exception):
    """Another worker holds the environment; try again shortly."""


def deploy(rt: Runtime, env_id: str, revision: int) -> str:
    """Run revision N of an environment; returns the deployment's final status.

    Raises LeaseBusy when another worker acts on the environment.
    """
    if not _should_run(rt, env_id, revision):
        return "skipped"
    seconds = lease_seconds(rt)
    fencing = lease.acquire(rt.sessions, env_id, rt.owner, seconds=seconds)
    if fencing is None:
        raise LeaseBusy(env_id)
    try:
        with lease.Heartbeat(rt.sessions, env_id, rt.owner, fencing, seconds=seconds) as heartbeat:
            return Execution(rt, env_id, revision, fencing, heartbeat).run()
    finally:
        # With the database away the lease cannot be released: it expires on its own.
        with contextlib.suppress(DBAPIError):
            lease.release(rt.sessions, env_id, rt.owner, fencing)


def _should_run(rt: Runtime, env_id: str, revision: int) -> bool:
    """False for finished, missing or superseded deployments (marked so)."""
    with rt.sessions() as session:
        deployment = deployment_of(session, env_id, revision)
        if deployment is None or deployment.status not in IN_FLIGHT:
            return False
        newer = session.scalar(
            select(Deployment.revision)
            .where(
                Deployment.environment_id == env_id,
                Deployment.revision > revision,
                Deployment.status.in_(IN_FLIGHT),
            )
            .limit(1)
        )
        if newer is not None and deployment.status == DeploymentStatus.QUEUED:
            deployment.status = DeploymentStatus.CANCELLED
            deployment.error = f"superseded by revision {newer}"
            deployment.finished_at = utcnow()
            EventLog(rt.sessions, env_id, revision).add(
                session, f"revision {revision} superseded by {newer}"
            )
            session.commit()
            return False
        return True
