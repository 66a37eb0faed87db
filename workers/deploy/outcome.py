"""How an attempt ends: the deployment's final status, the environment's, and its records."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import ContainerRecord, Deployment, Environment
from catalog.models.common import utcnow
from catalog.models.deployment import DeploymentStatus
from catalog.models.environment import EnvironmentStatus
from catalog.services.webhooks import emit
from packages.secrets import redact
from workers import webhooks
from workers.engine import ObservedContainer
from workers.events import EventLog
from workers.runtime import Runtime


def deployment_of(session: Session, env_id: str, revision: int) -> Deployment | None:
    return session.scalar(
        select(Deployment).where(
            Deployment.environment_id == env_id, Deployment.revision == revision
        )
    )


# The ends of a deployment webhooks are told of.
TOLD = frozenset(
    {DeploymentStatus.SUCCEEDED, DeploymentStatus.FAILED, DeploymentStatus.ROLLED_BACK}
)


class Outcome:
    """Writes the end of one revision's attempt, with its last event in the same commit."""

    def __init__(self, rt: Runtime, env_id: str, revision: int, events: EventLog) -> None:
        self.rt, self.env_id, self.revision, self.events = rt, env_id, revision, events
        # What the undo could not restore (volumes whose snapshots are kept): a failed or
        # cancelled revision leaves the environment deploy_failed naming each.
        self.unrestored: list[str] = []

    def succeeded(self, log_share: int) -> str:
        records = self.rt.engine.observe(self.env_id)
        with self.rt.sessions() as session:
            deployment = deployment_of(session, self.env_id, self.revision)
            environment = session.get(Environment, self.env_id)
            assert deployment is not None and environment is not None  # held under the lease
            deployment.status, deployment.finished_at, deployment.error = (
                DeploymentStatus.SUCCEEDED,
                utcnow(),
                "",
            )
            environment.current_revision = self.revision
            environment.status, environment.status_detail = EnvironmentStatus.READY, ""
            replace_records(session, self.env_id, records, log_share)
            self.events.add(session, f"revision {self.revision} is ready")
            told = self._tell(session, environment, DeploymentStatus.SUCCEEDED, "")
            session.commit()
        webhooks.send(told)
        return DeploymentStatus.SUCCEEDED

    def failed(self, reason: str, had_revision: bool) -> str:
        status = DeploymentStatus.ROLLED_BACK if had_revision else DeploymentStatus.FAILED
        detail = f"revision {self.revision} failed: {reason}" + self._unrestored()
        suffix = "; the previous revision keeps serving" if had_revision else ""
        self._finish(
            status, EnvironmentStatus.DEPLOY_FAILED, detail, event=(detail + suffix, "error")
        )
        return status

    def cancelled(self, reason: str, had_revision: bool) -> str:
        event = (f"revision {self.revision} cancelled: {reason}", "warning")
        if reason == "the environment is being deleted":
            self._finish(DeploymentStatus.CANCELLED, None, reason, event=event)
        elif self.unrestored:
            detail = f"revision {self.revision} cancelled: {reason}" + self._unrestored()
            self._finish(DeploymentStatus.CANCELLED, EnvironmentStatus.DEPLOY_FAILED, detail,
                         event=(detail, "error"))  # fmt: skip
        else:
            self._finish(
                DeploymentStatus.CANCELLED,
                EnvironmentStatus.READY if had_revision else EnvironmentStatus.NEW,
                "",
                event=event,
            )
        return DeploymentStatus.CANCELLED

    def _unrestored(self) -> str:
        return "".join(f"; {problem}" for problem in self.unrestored)

    def _finish(
        self, status: str, env_status: str | None, detail: str, *, event: tuple[str, str]
    ) -> None:
        """The final status, with the revision's last event (message, level) in its commit."""
        with self.rt.sessions() as session:
            deployment = deployment_of(session, self.env_id, self.revision)
            environment = session.get(Environment, self.env_id)
            detail = redact(detail, self.events.hidden)
            if deployment is not None:
                deployment.status, deployment.finished_at = status, utcnow()
                deployment.error = detail
            if environment is not None and env_status is not None:
                environment.status, environment.status_detail = env_status, detail
            told: list[str] = []
            if environment is not None:  # else its events went with it
                message, level = event
                self.events.add(session, message, level=level)
                told = self._tell(session, environment, status, detail)
            session.commit()
        webhooks.send(told)

    def _tell(self, session: Session, environment: Environment, status: str, error: str):
        """The webhook deliveries of this end (deployment.succeeded, .failed, .rolled_back),
        added to its commit; none for a cancel."""
        if status not in TOLD:
            return []
        data = {
            "environment": environment.name,
            "environment_id": environment.id,
            "revision": self.revision,
            "status": status,
            "error": error,
        }
        return emit(session, environment.tenant_id, f"deployment.{status}", data)


def replace_records(
    session: Session, env_id: str, observed: list[ObservedContainer], log_share: int
) -> None:
    """Container records mirror what the engine shows for the environment right now.

    A container that stays keeps its record and what the tracker learnt of it (restarts,
    deaths, exit code, OOM); the records of containers gone are dropped.
    """
    existing = {
        record.id: record
        for record in session.scalars(
            select(ContainerRecord).where(ContainerRecord.environment_id == env_id)
        )
    }
    kept: set[str] = set()
    for item in observed:
        if item.app is None or item.service is None:
            continue
        record = existing.get(item.id)
        if record is None:
            record = ContainerRecord(id=item.id, environment_id=env_id)
            session.add(record)
        record.revision = item.revision or 0
        record.app, record.service, record.name = item.app, item.service, item.name
        record.config_hash = item.config_hash or ""
        record.state = "running" if item.running else "exited"
        record.log_bytes = log_share
        record.updated_at = utcnow()
        kept.add(item.id)
    for container_id in existing.keys() - kept:
        session.delete(existing[container_id])
