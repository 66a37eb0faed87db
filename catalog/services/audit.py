"""The audit trail: every change, added to the caller's transaction so it commits with the
change, and every refused write (recorded by the API in a transaction of its own); read
back newest first, filtered, a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.auth import Principal, require_role
from catalog.errors import Forbidden, ValidationFailed
from catalog.models import AuditEvent, Tenant
from catalog.services import tenants
from catalog.services.pagination import decode_cursor, encode_cursor

# Why a write was refused, by its status.
REFUSALS = {401: "unauthorized", 403: "forbidden", 409: "conflict", 429: "rate_limited"}


def record(
    session: Session,
    principal: Principal | None,
    action: str,
    object_type: str,
    object_id: str,
    *,
    tenant_id: str | None = None,
    detail: dict[str, Any] | None = None,
    result: str = "ok",
) -> None:
    session.add(
        AuditEvent(
            actor=principal.token_id if principal else None,
            tenant_id=tenant_id or (principal.tenant_id if principal else None),
            action=action,
            object_type=object_type,
            object_id=object_id,
            result=result,
            detail=detail or {},
        )
    )


def record_refusal(
    session: Session,
    principal: Principal | None,
    *,
    endpoint: str,
    method: str,
    route: str,
    path: str,
    status: int,
    address: str | None,
) -> None:
    """A write the API refused: who (the token, when one authenticated; the address), what
    (the route, the path) and why (the status). Never a header, a body or a query: no
    token or secret reaches the trail."""
    record(
        session,
        principal,
        endpoint[:64],
        "request",
        path[:200],
        result=REFUSALS[status],
        detail={"method": method, "route": route, "status": status, "address": address},
    )


def list_events(
    session: Session,
    principal: Principal,
    *,
    tenant: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    object: str | None = None,
    result: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: int | None = None,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of audit events, newest first (oldest first `after` an id), and the cursor
    of the next page. An admin reads every tenant's; a publisher its own tenant's."""
    require_role(principal, "publisher")
    query = select(AuditEvent, Tenant.name).outerjoin(Tenant, Tenant.id == AuditEvent.tenant_id)
    if not principal.is_admin:
        if tenant is not None and tenant not in (principal.tenant_name, principal.tenant_id):
            raise Forbidden("a publisher reads the audit events of its own tenant only")
        query = query.where(AuditEvent.tenant_id == principal.tenant_id)
    elif tenant is not None:
        query = query.where(AuditEvent.tenant_id == tenants.find_tenant(session, tenant).id)
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if action is not None:
        kind = action.removesuffix("*")
        query = query.where(
            AuditEvent.action.startswith(kind, autoescape=True)
            if kind != action
            else AuditEvent.action == action
        )
    if object is not None:
        query = query.where(AuditEvent.object_id == object)
    if result is not None:
        query = query.where(AuditEvent.result == result)
    # In UTC: the database takes offsets of at most 15:59, ISO 8601 any.
    if since is not None:
        query = query.where(AuditEvent.created_at >= _utc(since))
    if until is not None:
        query = query.where(AuditEvent.created_at < _utc(until))
    last = decode_cursor(cursor, 1)[0] if cursor else None
    if last is not None and not (isinstance(last, int) and abs(last) < 2**62):
        raise ValidationFailed(
            "the cursor is not valid", errors=[{"path": "cursor", "message": "invalid cursor"}]
        )
    # Oldest first after an id (a cursor of this order is the negated id: the two never mix).
    ascending = after is not None or (last is not None and last < 0)
    if ascending:
        start = max(after or 0, -last if last is not None else 0)
        query = query.where(AuditEvent.id > start).order_by(AuditEvent.id)
    else:
        if last is not None:
            query = query.where(AuditEvent.id < last)
        query = query.order_by(AuditEvent.id.desc())
    rows = session.execute(query.limit(limit + 1)).all()
    page = [_view(event, name) for event, name in rows[:limit]]
    following = None
    if len(rows) > limit:
        last_id = page[-1]["id"]
        following = encode_cursor([-last_id if ascending else last_id])
    return page, following


def _utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # within hours of year 1 or 9999: the edge of all time
        edge = datetime.min if moment.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC)


def _view(event: AuditEvent, tenant: str | None) -> dict[str, Any]:
    return {
        "id": event.id,
        "created_at": event.created_at,
        "tenant": tenant,
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "result": event.result,
        "detail": event.detail,
    }
