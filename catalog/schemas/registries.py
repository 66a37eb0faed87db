"""A tenant's credentials for private registries; the password goes in, never out."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from catalog.schemas.common import PageArgs
from packages.imageref import server_problem


def _server(value: str) -> None:
    problem = server_problem(value)
    if problem:
        raise ValidationError(problem)


_TENANT = "An admin's: the tenant (name or id); otherwise the caller's own"


class RegistryCreate(Schema):
    server = fields.String(
        required=True,
        validate=_server,
        metadata={
            "description": "The registry as image references name it: host[:port] (ghcr.io, "
            "registry.example.com:5000, 127.0.0.1:5000; docker.io for Docker Hub), one that "
            "CATALOG_REGISTRIES allows",
            "pattern": r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$",
            "maxLength": 255,
        },
    )
    username = fields.String(
        required=True,
        validate=[
            validate.Length(1, 255),
            validate.Regexp(r"^[^\x00-\x1f\x7f]+\Z", error="no control characters"),
        ],
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(1, 8192),
        metadata={"description": "Kept encrypted; never shown again (a token works too)"},
    )
    tenant = fields.String(
        load_default=None, validate=validate.Length(1, 64), metadata={"description": _TENANT}
    )


class Registry(Schema):
    id = fields.String()
    tenant = fields.Function(lambda r: r.tenant.name)
    server = fields.String()
    username = fields.String()
    created_at = fields.DateTime()


class RegistryArgs(PageArgs):
    tenant = fields.String(
        load_default=None, validate=validate.Length(1, 64), metadata={"description": _TENANT}
    )


class RegistryList(Schema):
    items = fields.List(fields.Nested(Registry), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
