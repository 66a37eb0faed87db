"""Bearer tokens: who is asking, for which tenant, with which role.

Nothing here reads the request: the API layer (catalog.api.context) takes the secret from
the Authorization header and hands the principal to the services.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from catalog.db import PlannedOnce
from catalog.errors import Forbidden, Unauthorized
from catalog.models import Tenant, Token
from catalog.models.common import utcnow

# What each role may do includes everything of the roles ranked below it.
ROLE_RANK = {"viewer": 0, "deployer": 1, "publisher": 2, "admin": 3}
SECRET_PREFIX = "cat_"


@dataclass(frozen=True)
class Principal:
    """The caller as its token says: never taken from a request body."""

    token_id: str
    tenant_id: str
    tenant_name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class _TokenRow(NamedTuple):
    """A row of the token lookup, its columns in the statement's order."""

    id: str
    tenant_id: str
    tenant: str
    role: str
    revoked_at: datetime | None
    expires_at: datetime | None


# Plain columns, not ORM objects, in one statement built once and planned once per database
# connection: this runs on every request.
_TOKEN_LOOKUP = PlannedOnce(
    "catalog_token_lookup",
    select(Token.id, Token.tenant_id, Tenant.name, Token.role, Token.revoked_at, Token.expires_at)
    .join(Tenant, Tenant.id == Token.tenant_id)
    .where(Token.secret_hash == bindparam("secret_hash")),
)


def authenticate(connection: Connection, secret: str) -> Principal:
    """The principal of a valid token; Unauthorized for unknown, revoked or expired ones."""
    values = {"secret_hash": hash_secret(secret)}
    found = _TOKEN_LOOKUP.rows(connection, values)
    token = _TokenRow(*found[0]) if found else None
    if token is None or token.revoked_at is not None:
        raise Unauthorized("the token is not valid")
    if token.expires_at is not None and _aware(token.expires_at) <= utcnow():
        raise Unauthorized("the token has expired")
    return Principal(token.id, token.tenant_id, token.tenant, token.role)


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def require_role(principal: Principal, role: str) -> Principal:
    if not principal.has_role(role):
        raise Forbidden(f"this needs the {role} role; the token has {principal.role}")
    return principal
