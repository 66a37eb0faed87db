"""Bearer tokens: who is asking, for which tenant, with which role."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from flask import g, request
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from catalog.db import PlannedOnce
from catalog.errors import Forbidden, Unauthorized
from catalog.models import Tenant, Token
from catalog.models.common import utcnow

# What each role may do includes everything of the roles ranked below it.
ROLE_RANK = {"viewer": 0, "deployer": 1, "publisher": 2, "admin": 3}
SECRET_PREFIX = "cat_"
# Query parameters that look like credentials: refused, tokens belong in the header.
QUERY_CREDENTIALS = ("token", "access_token", "api_key", "apikey")


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


def _aware(moment):
    # SQLite returns naive datetimes for timezone-aware columns.
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def bearer_secret() -> str | None:
    """The secret of the Authorization header, or None when there is no header."""
    if any(name in request.args for name in QUERY_CREDENTIALS):
        raise Unauthorized("tokens are accepted only in the Authorization header")
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return secret.strip()


def current_principal(connection: Callable[[], Connection]) -> Principal:
    """The authenticated caller of this request (cached on `g`); Unauthorized if none.

    `connection` gives the request's database connection, asked for only to authenticate.
    """
    if "principal" not in g:
        secret = bearer_secret()
        if secret is None:
            raise Unauthorized()
        g.principal = authenticate(connection(), secret)
    return g.principal


# What answers without a token: liveness and the OpenAPI document.
PUBLIC_ENDPOINTS = frozenset({"health.health"})
PUBLIC_BLUEPRINTS = frozenset({"api-docs"})


def authenticate_request() -> None:
    """Before-request hook: every route but the public ones needs a valid token.

    It runs before a view parses its arguments, so an anonymous caller, or one with a
    token in the query string, gets 401 whatever its body or query says (never a 400
    describing what the route would accept). Unrouted requests keep their 404/405.
    """
    if (
        request.endpoint is None
        or request.method == "OPTIONS"
        or request.endpoint in PUBLIC_ENDPOINTS
        or request.blueprint in PUBLIC_BLUEPRINTS
    ):
        return
    from catalog.api.context import connection  # the api imports auth

    current_principal(connection)


def require_role(principal: Principal, role: str) -> Principal:
    if not principal.has_role(role):
        raise Forbidden(f"this needs the {role} role; the token has {principal.role}")
    return principal
