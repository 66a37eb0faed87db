"""Private registries: a tenant's username and password for a registry server, which workers
use for that tenant's pulls of images from it, and for nobody else's.

The password is sealed like a secret parameter (catalog/secretbox.py) and never shown: not in
an answer, an audit row, an event or a log line; the worker opens it only for the pull. A
pull with credentials first marks its repository guarded (`guarded_registries`, kept when
the credentials go): every deploy of an image of a guarded repository pulls it as the
deploying tenant, so an image one tenant pulled with its credentials is never run for another
because the shared engine holds it (workers/deploy/registries.py).
"""

from __future__ import annotations

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.auth import Principal, require_role
from catalog.errors import Conflict, Forbidden, NotFound, ValidationFailed
from catalog.models import RegistryCredential
from catalog.secretbox import SecretBox
from catalog.services import audit, tenants
from catalog.services.pagination import decode_cursor, encode_cursor
from packages.imageref import RegistryPolicy, normalise_server, server_problem

MAX_REGISTRIES = 50  # per tenant


def add_registry(
    session: Session,
    principal: Principal,
    *,
    server: str,
    username: str,
    password: str,
    tenant: str | None,
    registries: RegistryPolicy,
    box: SecretBox,
) -> RegistryCredential:
    """Keep credentials for `server` for the caller's tenant (an admin: the tenant named)."""
    require_role(principal, "publisher")
    tenant_id = _tenant_of(session, principal, tenant)
    problem = server_problem(server)
    if problem is None:
        server = normalise_server(server)
        problem = registries.problem(server)
    if problem:
        raise ValidationFailed(
            f"{server!r} is not a registry images may be pulled from",
            errors=[{"path": "server", "message": problem}],
        )
    if _held(session, tenant_id) >= MAX_REGISTRIES:
        raise Conflict(f"the tenant has credentials for {MAX_REGISTRIES} registries, the most "
                       "it may have; remove some first")  # fmt: skip
    taken = f"the tenant has credentials for {server} already; remove them first to replace them"
    if _find(session, tenant_id, server) is not None:
        raise Conflict(taken)
    sealed = box.seal(password)
    credential = RegistryCredential(
        tenant_id=tenant_id, server=server, username=username, password=sealed,
        created_by=principal.token_id,
    )  # fmt: skip
    session.add(credential)
    try:
        session.flush()
    except IntegrityError:  # the same server, added meanwhile for this tenant
        session.rollback()
        raise Conflict(taken) from None
    audit.record(session, principal, "registry.create", "registry", credential.id,
                 tenant_id=tenant_id, detail={"server": server})  # fmt: skip
    session.commit()
    return credential


def _tenant_of(session: Session, principal: Principal, tenant: str | None) -> str:
    """The tenant a request is about: the caller's own, or the one an admin names."""
    if tenant is None or tenant in (principal.tenant_name, principal.tenant_id):
        return principal.tenant_id
    if not principal.is_admin:
        raise Forbidden("a publisher keeps registry credentials for its own tenant only")
    return tenants.find_tenant(session, tenant).id


def _held(session: Session, tenant_id: str) -> int:
    query = select(func.count()).where(RegistryCredential.tenant_id == tenant_id)
    return session.scalar(query) or 0


def _find(session: Session, tenant_id: str, server: str) -> RegistryCredential | None:
    return session.scalar(
        select(RegistryCredential).where(
            RegistryCredential.tenant_id == tenant_id, RegistryCredential.server == server
        )
    )


def _scoped(principal: Principal) -> Select:
    query = select(RegistryCredential)
    if principal.is_admin:
        return query
    return query.where(RegistryCredential.tenant_id == principal.tenant_id)


def list_registries(
    session: Session,
    principal: Principal,
    *,
    tenant: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[RegistryCredential], str | None]:
    """A page of the tenant's registry credentials (an admin: every tenant's, or the one
    named) by server, then id, and the cursor of the next page."""
    require_role(principal, "publisher")
    query = _scoped(principal)
    if tenant is not None:
        query = query.where(RegistryCredential.tenant_id == _tenant_of(session, principal, tenant))
    if cursor:
        server, last_id = decode_cursor(cursor, 2)
        query = query.where(
            or_(
                RegistryCredential.server > server,
                and_(RegistryCredential.server == server, RegistryCredential.id > last_id),
            )
        )
    order = (RegistryCredential.server, RegistryCredential.id)
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    page = rows[:limit]
    following = encode_cursor([page[-1].server, page[-1].id]) if len(rows) > limit else None
    return page, following


def remove_registry(session: Session, principal: Principal, registry_id: str) -> None:
    """Forget credentials; the server stays guarded (images pulled with them may remain)."""
    require_role(principal, "publisher")
    credential = session.scalar(_scoped(principal).where(RegistryCredential.id == registry_id))
    if credential is None:
        raise NotFound(f"no registry credentials {registry_id!r}")
    session.delete(credential)
    audit.record(session, principal, "registry.delete", "registry", credential.id,
                 tenant_id=credential.tenant_id, detail={"server": credential.server})  # fmt: skip
    session.commit()
