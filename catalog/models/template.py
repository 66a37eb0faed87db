"""Templates: environment specs kept for making environments from them again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.db import Base
from catalog.models.common import created_column, id_column, utcnow
from catalog.models.tenant import Tenant


class Template(Base):
    """Settings and apps ({name, package, version, parameters, bindings}) of an environment
    to be; a tenant's own, like its environments."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    settings: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)
    apps: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    # The environment it was made from, by name, when it was made from one.
    source: Mapped[str | None] = mapped_column(String(63))
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )

    tenant: Mapped[Tenant] = relationship(lazy="joined")
