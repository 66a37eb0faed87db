"""Docker hosts: the engines environments are placed on, each served by its own workers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base
from catalog.models.common import created_column, id_column


class Host(Base):
    """A registered Docker host. Its workers and its tracker run with CATALOG_HOST_NAME=<name>;
    environments with no host run on the default engine (CATALOG_HOST_NAME unset)."""

    __tablename__ = "hosts"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)
    # The address shown in the endpoints of the environments placed here.
    public_host: Mapped[str] = mapped_column(String(255), nullable=False)
    # Where the API reads container logs; empty: the API cannot reach this engine.
    docker_url: Mapped[str] = mapped_column(String(255), default="", nullable=False)
    # New environments may be placed here.
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    created_at: Mapped[datetime] = created_column()
