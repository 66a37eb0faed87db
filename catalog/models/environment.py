"""Environments, the apps of their draft, and the host ports allocated to them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.db import Base
from catalog.models.common import created_column, id_column, utcnow
from catalog.models.host import Host
from catalog.models.tenant import Tenant


class EnvironmentStatus(StrEnum):
    """Where an environment is; stored as its string value."""

    NEW = "new"
    DEPLOYING = "deploying"
    READY = "ready"
    DEGRADED = "degraded"
    DEPLOY_FAILED = "deploy_failed"
    DELETING = "deleting"
    DELETE_FAILED = "delete_failed"


class AppStatus(StrEnum):
    """The status a user sees for one app: computed from its deployment and containers,
    never stored (catalog.services.environment_rules.app_status)."""

    PENDING = "pending"
    DEPLOYING = "deploying"
    RUNNING = "running"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    CRASHLOOP = "crashloop"
    STOPPED = "stopped"
    FAILED = "failed"


class Environment(Base):
    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    settings: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)
    # The Docker host it runs on; None: the default engine. Chosen at creation, never moved.
    host_id: Mapped[str | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=EnvironmentStatus.NEW, nullable=False)
    status_detail: Mapped[str] = mapped_column(Text, default="", nullable=False)
    # Bumped by every draft edit; the ETag of the environment and its apps.
    draft_version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    current_revision: Mapped[int | None] = mapped_column(Integer)
    last_revision: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )

    tenant: Mapped[Tenant] = relationship(lazy="joined")
    host: Mapped[Host | None] = relationship()
    apps: Mapped[list[App]] = relationship(
        back_populates="environment",
        cascade="all, delete-orphan",
        order_by="App.name",
        # Loaded when read: most reads of an environment (its deployments, events, status,
        # the workers' checks) never touch its apps. Lists ask for them with selectinload.
    )

    @property
    def host_name(self) -> str | None:
        """The name of its Docker host, whose workers get its tasks; None: the default engine."""
        if self.host_id is None:
            return None
        assert self.host is not None  # host_id is a foreign key: the row is there
        return self.host.name


def placed_on(host_id: str | None):
    """The condition on Environment of being placed on host `host_id` (None: on no host)."""
    return Environment.host_id.is_(None) if host_id is None else Environment.host_id == host_id


class App(Base):
    """One application instance in an environment's draft."""

    __tablename__ = "apps"
    __table_args__ = (UniqueConstraint("environment_id", "name"),)

    id: Mapped[str] = id_column()
    environment_id: Mapped[str] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(63), nullable=False)
    package: Mapped[str] = mapped_column(String(128), index=True, nullable=False)
    # An exact version or a semver range; None means the newest non-yanked version.
    version: Mapped[str | None] = mapped_column(String(128))
    parameters: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)
    bindings: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)
    created_at: Mapped[datetime] = created_column()

    environment: Mapped[Environment] = relationship(back_populates="apps")


class HostPort(Base):
    """A host port given to one published container port; stable across revisions."""

    __tablename__ = "host_ports"
    __table_args__ = (
        UniqueConstraint("environment_id", "app", "service", "container_port", "protocol"),
    )

    port: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    environment_id: Mapped[str] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    app: Mapped[str] = mapped_column(String(63), nullable=False)
    service: Mapped[str] = mapped_column(String(63), nullable=False)
    container_port: Mapped[int] = mapped_column(Integer, nullable=False)
    protocol: Mapped[str] = mapped_column(String(3), default="tcp", nullable=False)
