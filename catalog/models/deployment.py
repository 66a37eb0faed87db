"""Deployments (revisions), their events, the environment lease and observed containers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from catalog.db import Base
from catalog.models.common import created_column, id_column
from catalog.snapshot import DeploymentSnapshot


class DeploymentStatus(StrEnum):
    """Where a deployment is; stored as its string value."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"


# Queued or running: what holds a tenant's deploy capacity and the packages it names.
IN_FLIGHT = frozenset({DeploymentStatus.QUEUED, DeploymentStatus.RUNNING})
FINISHED = frozenset(DeploymentStatus) - IN_FLIGHT


class Deployment(Base):
    """Revision N of an environment: an immutable snapshot with every version resolved."""

    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("environment_id", "revision"),
        Index("ix_deployments_status", "status"),
    )

    id: Mapped[str] = id_column()
    environment_id: Mapped[str] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default=DeploymentStatus.QUEUED, nullable=False)
    spec: Mapped[DeploymentSnapshot] = mapped_column(JSON, nullable=False)
    from_revision: Mapped[int | None] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    error: Mapped[str] = mapped_column(Text, default="", nullable=False)
    plan: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_column()
    # Set from the commit on (the publish is in flight); None when the broker could not take
    # it. The resync publishes None at once and anything else only once it is stale.
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeploymentEvent(Base):
    """What happened, in order: per environment, `id` only grows."""

    __tablename__ = "deployment_events"
    __table_args__ = (Index("ix_events_env_id", "environment_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    environment_id: Mapped[str] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    )
    revision: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_column()
    level: Mapped[str] = mapped_column(String(8), default="info", nullable=False)
    app: Mapped[str | None] = mapped_column(String(63))
    service: Mapped[str | None] = mapped_column(String(63))
    message: Mapped[str] = mapped_column(Text, nullable=False)


class EnvironmentLease(Base):
    """Who may act on an environment now; `fencing` grows with every new holder."""

    __tablename__ = "environment_leases"

    environment_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fencing: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


class ContainerRecord(Base):
    """A container the catalog created, as last observed in the engine."""

    __tablename__ = "containers"
    __table_args__ = (Index("ix_containers_env_app", "environment_id", "app", "service"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the engine's id
    environment_id: Mapped[str] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    )
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    app: Mapped[str] = mapped_column(String(63), nullable=False)
    service: Mapped[str] = mapped_column(String(63), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    config_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    state: Mapped[str] = mapped_column(String(16), default="created", nullable=False)
    health: Mapped[str | None] = mapped_column(String(16))
    restart_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    oom_killed: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Epoch seconds of recent deaths (bounded), for backoff and crash-loop detection.
    deaths: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    next_restart_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    log_bytes: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = created_column()


class TaskStatus(StrEnum):
    """Where an action's run is; stored as its string value."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Task(Base):
    """An action run on an app or one service: built-in (restart, stop, start) or the package's."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_env_created", "environment_id", "created_at"),)

    id: Mapped[str] = id_column()
    environment_id: Mapped[str] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    )
    app: Mapped[str] = mapped_column(String(63), nullable=False)
    service: Mapped[str | None] = mapped_column(String(63))
    action: Mapped[str] = mapped_column(String(63), nullable=False)
    parameters: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.QUEUED, nullable=False)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    output: Mapped[str] = mapped_column(Text, default="", nullable=False)  # head and tail
    # Bytes of the output left out between its kept head and tail.
    output_cut: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default="0", nullable=False
    )
    error: Mapped[str] = mapped_column(Text, default="", nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_column()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def deployed_app(session: Session, environment_id: str, revision: int | None, app: str):
    """The snapshot of `app` in revision `revision` (an environment's current one), or None."""
    if revision is None:
        return None
    spec = session.scalar(
        select(Deployment.spec).where(
            Deployment.environment_id == environment_id, Deployment.revision == revision
        )
    )
    return next((a for a in (spec or {}).get("apps", []) if a["name"] == app), None)
