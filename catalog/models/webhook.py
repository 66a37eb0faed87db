"""Webhooks: a tenant's URLs told of events, and each delivery's record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.db import Base
from catalog.models.common import created_column, id_column
from catalog.models.tenant import Tenant


class Webhook(Base):
    """A URL of a tenant's, told of the events it names, signed with its secret."""

    __tablename__ = "webhooks"

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True, nullable=False
    )
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    events: Mapped[list] = mapped_column(JSON, nullable=False)
    # The signing secret, sealed (catalog/secretbox.py): shown once, at registration.
    secret: Mapped[dict] = mapped_column(JSON, nullable=False)
    description: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_column()

    tenant: Mapped[Tenant] = relationship()


class WebhookDelivery(Base):
    """One event sent (or to be sent) to one webhook: its body, attempts and last answer."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_hook", "webhook_id", "created_at"),)

    id: Mapped[str] = id_column()
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
    )
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="pending", nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="", nullable=False)
    created_at: Mapped[datetime] = created_column()
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
