"""Private registries: a tenant's credentials for a registry, and every server ever given some."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.db import Base
from catalog.models.common import created_column, id_column
from catalog.models.tenant import Tenant


class RegistryCredential(Base):
    """A tenant's username and password for one registry server, used for its pulls only."""

    __tablename__ = "registry_credentials"
    __table_args__ = (
        UniqueConstraint("tenant_id", "server", name="uq_registry_credentials_server"),
    )

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )
    # host[:port] as image references name it, normalised (packages.imageref.normalise_server).
    server: Mapped[str] = mapped_column(String(255), index=True, nullable=False)
    username: Mapped[str] = mapped_column(String(255), nullable=False)
    # Sealed (catalog/secretbox.py) like a secret parameter; never shown.
    password: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_column()

    tenant: Mapped[Tenant] = relationship()


class GuardedRegistry(Base):
    """A repository of a registry server some tenant pulled with its credentials (marked just
    before that pull). Never deleted: the image may stay on an engine after the credentials
    go, so every deploy of an image of that repository pulls it with the deploying tenant's
    own credentials (or none) first. Other repositories of the server are not slowed."""

    __tablename__ = "guarded_registries"

    server: Mapped[str] = mapped_column(String(255), primary_key=True)
    repository: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = created_column()
