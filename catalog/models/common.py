"""Column helpers shared by the models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import mapped_column


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


def id_column():
    return mapped_column(String(32), primary_key=True, default=new_id)


def created_column():
    return mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
