"""Tenants and tokens (admin)."""

from __future__ import annotations

from flask_smorest import Blueprint

from catalog.api.context import db, principal
from catalog.api.docs import problems
from catalog.schemas import tenants as schemas
from catalog.services import tenants as service

blp = Blueprint("tenants", __name__, description="Tenants and API tokens")
# App-wide: every request is authenticated before any view parses its arguments.


@blp.route("/tenants", methods=["POST"])
@problems(403, 409)
@blp.arguments(schemas.TenantCreate())
@blp.response(201, schemas.Tenant)
def create_tenant(body):
    """Create a tenant (admin)."""
    return service.create_tenant(db(), principal(), body["name"])


@blp.route("/tenants", methods=["GET"])
@blp.response(200, schemas.TenantList)
def list_tenants():
    """Tenants: all of them for an admin, the caller's own otherwise."""
    return {"items": service.list_tenants(db(), principal()), "next_cursor": None}


@blp.route("/tokens", methods=["POST"])
@problems(403, 404)
@blp.arguments(schemas.TokenCreate())
@blp.response(201, schemas.TokenCreated)
def create_token(body):
    """Issue a token for a tenant and role (admin); the secret is in this response only."""
    token, secret = service.issue_token(
        db(),
        principal(),
        body["tenant"],
        body["role"],
        expires_in=body["expires_in"],
        description=body["description"],
    )
    token.secret = secret  # shown in this response only; never stored
    return token


@blp.route("/tokens", methods=["GET"])
@blp.response(200, schemas.TokenList)
def list_tokens():
    """Live tokens: all for an admin, the caller's own otherwise (never their secrets)."""
    return {"items": service.list_tokens(db(), principal()), "next_cursor": None}


@blp.route("/tokens/<token_id>", methods=["DELETE"])
@blp.response(204)
def revoke_token(token_id):
    """Revoke a token (admin, or the token itself); it stops working at once."""
    service.revoke_token(db(), principal(), token_id)
