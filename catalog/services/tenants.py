"""Tenants and tokens: creation, listing, revocation and the first admin token."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.auth import Principal, hash_secret, new_secret, require_role
from catalog.errors import Conflict, NotFound
from catalog.models import Tenant, Token
from catalog.models.common import utcnow
from catalog.services import audit
from catalog.services.lookup import commit_or_conflict

ADMIN_TENANT = "admin"


def create_tenant(session: Session, principal: Principal, name: str) -> Tenant:
    require_role(principal, "admin")
    if session.scalar(select(Tenant).where(Tenant.name == name)) is not None:
        raise Conflict(f"a tenant named {name!r} exists already")
    tenant = Tenant(name=name)
    session.add(tenant)
    session.flush()
    audit.record(session, principal, "tenant.create", "tenant", tenant.id)
    commit_or_conflict(session, f"a tenant named {name!r} exists already")
    return tenant


def list_tenants(session: Session, principal: Principal) -> list[Tenant]:
    if principal.is_admin:
        return list(session.scalars(select(Tenant).order_by(Tenant.name)))
    return [session.get_one(Tenant, principal.tenant_id)]


def find_tenant(session: Session, ref: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where((Tenant.name == ref) | (Tenant.id == ref)))
    if tenant is None:
        raise NotFound(f"no tenant {ref!r}")
    return tenant


def issue_token(
    session: Session,
    principal: Principal,
    tenant_ref: str,
    role: str,
    *,
    expires_in: int | None = None,
    description: str = "",
) -> tuple[Token, str]:
    """A new token and its secret; the secret is returned here and never again."""
    require_role(principal, "admin")
    tenant = find_tenant(session, tenant_ref)
    token, secret = _new_token(tenant, role, expires_in, description)
    session.add(token)
    session.flush()
    audit.record(
        session,
        principal,
        "token.create",
        "token",
        token.id,
        tenant_id=tenant.id,
        detail={"role": role},
    )
    session.commit()
    return token, secret


def _new_token(
    tenant: Tenant, role: str, expires_in: int | None, description: str
) -> tuple[Token, str]:
    secret = new_secret()
    expires_at = utcnow() + timedelta(seconds=expires_in) if expires_in else None
    token = Token(
        tenant=tenant,
        role=role,
        secret_hash=hash_secret(secret),
        description=description,
        expires_at=expires_at,
    )
    return token, secret


def list_tokens(session: Session, principal: Principal) -> list[Token]:
    query = select(Token).where(Token.revoked_at.is_(None)).order_by(Token.created_at, Token.id)
    if not principal.is_admin:
        query = query.where(Token.id == principal.token_id)
    return list(session.scalars(query))


def revoke_token(session: Session, principal: Principal, token_id: str) -> None:
    """Admins revoke any token; any token may revoke itself."""
    token = session.get(Token, token_id)
    if (
        token is None
        or not (principal.is_admin or token.id == principal.token_id)
        or token.revoked_at is not None
    ):
        raise NotFound(f"no token {token_id!r}")
    token.revoked_at = utcnow()
    audit.record(session, principal, "token.revoke", "token", token.id, tenant_id=token.tenant_id)
    session.commit()


def bootstrap_admin(session: Session, description: str = "bootstrap") -> str:
    """Create the admin tenant if needed and a new admin token; returns its secret."""
    tenant = session.scalar(select(Tenant).where(Tenant.name == ADMIN_TENANT))
    if tenant is None:
        tenant = Tenant(name=ADMIN_TENANT)
        session.add(tenant)
    token, secret = _new_token(tenant, "admin", None, description)
    session.add(token)
    session.flush()
    audit.record(session, None, "token.bootstrap", "token", token.id, tenant_id=tenant.id)
    session.commit()
    return secret
