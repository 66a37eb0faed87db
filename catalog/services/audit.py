"""Audit events, added to the caller's transaction so they commit with the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from catalog.auth import Principal
from catalog.models import AuditEvent


def record(
    session: Session,
    principal: Principal | None,
    action: str,
    object_type: str,
    object_id: str,
    *,
    tenant_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEvent(
            actor=principal.token_id if principal else None,
            tenant_id=tenant_id or (principal.tenant_id if principal else None),
            action=action,
            object_type=object_type,
            object_id=object_id,
            detail=detail or {},
        )
    )
