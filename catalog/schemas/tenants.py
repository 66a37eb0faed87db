"""Tenants and tokens."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from catalog.models import ROLES
from catalog.schemas.common import NAME


class TenantCreate(Schema):
    name = fields.String(required=True, validate=NAME)


class Tenant(Schema):
    id = fields.String(dump_only=True)
    name = fields.String()
    created_at = fields.DateTime(dump_only=True)


class TenantList(Schema):
    items = fields.List(fields.Nested(Tenant), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class TokenCreate(Schema):
    tenant = fields.String(required=True, validate=validate.Length(1, 64))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    expires_in = fields.Integer(
        load_default=None, validate=validate.Range(60, 10 * 365 * 24 * 3600)
    )
    description = fields.String(load_default="", validate=validate.Length(max=200))


class Token(Schema):
    id = fields.String()
    tenant = fields.Function(lambda t: t.tenant.name)
    role = fields.String()
    description = fields.String()
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)


class TokenCreated(Token):
    token = fields.String(
        attribute="secret", metadata={"description": "The secret; shown only in this response."}
    )


class TokenList(Schema):
    items = fields.List(fields.Nested(Token), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
