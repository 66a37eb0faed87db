"""Named rows: a tenant's own object (an environment, a template) found by its name or its
id, and a new name committed."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.auth import Principal
from catalog.errors import Conflict, NotFound
from catalog.models import Environment, Template

# The models of a tenant's named rows.
Owned = TypeVar("Owned", Environment, Template)


def find_owned(
    session: Session, principal: Principal, model: type[Owned], kind: str, ref: str, *,
    lock: bool = False,
) -> Owned:  # fmt: skip
    """The caller's `model` row named (or with the id) `ref`; 404 for another tenant's.

    An admin sees every tenant's: a name in its own tenant wins, a name used by several
    other tenants must be given as the id.
    """
    query = select(model).where(or_(model.name == ref, model.id == ref))
    if not principal.is_admin:
        query = query.where(model.tenant_id == principal.tenant_id)
    if lock:
        query = query.with_for_update(of=model).execution_options(populate_existing=True)
    found = list(session.scalars(query))
    named = [row for row in found if row.name == ref]
    if len(named) > 1:
        own = [row for row in named if row.tenant_id == principal.tenant_id]
        if not own:
            tenants = ", ".join(sorted(row.tenant.name for row in named))
            raise Conflict(
                f"{kind}s named {ref!r} exist in several tenants ({tenants}); use its id"
            )
        named = own
    chosen = named or found
    if not chosen:
        raise NotFound(f"no {kind} {ref!r}")
    return chosen[0]


def name_taken(session: Session, model: type[Owned], tenant_id: str, name: str) -> bool:
    """Whether the tenant has a `model` row named `name` already."""
    query = select(model.id).where(model.tenant_id == tenant_id, model.name == name)
    return session.scalar(query) is not None


def commit_or_conflict(session: Session, conflict: str) -> None:
    """Commit; a unique name taken meanwhile by a concurrent request is 409 `conflict`."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(conflict) from None
