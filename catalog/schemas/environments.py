"""Environments and the apps of their draft."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from catalog import current_settings
from catalog.schemas.common import PageArgs
from catalog.secretbox import SEALED, contains_sealed
from packages.versions import is_range

DNS_LABEL = validate.Regexp(
    r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z",
    error="must be a DNS label: lower-case letters, digits and '-', 63 at most, "
    "not starting or ending with '-'",
)
FQN = validate.Regexp(
    r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+\Z",
    error="must be a package name like org.example.app",
)
PROBLEM = (
    "why the app cannot be deployed now (its package deleted, disabled or no longer "
    "available, no version matching); null: none"
)
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_VERSION_LENGTH = 128  # App.version


def version_constraint(value: str) -> None:
    # Empty or too long: the Length validator next to this one says so.
    if 0 < len(value) <= MAX_VERSION_LENGTH and not is_range(value):
        raise ValidationError("must be an exact version like 1.2.3 or a range like ^1.2.0")


VERSION: list[Callable[[Any], Any]] = [validate.Length(1, MAX_VERSION_LENGTH), version_constraint]


def bounded_document(value: dict[str, Any]) -> None:
    if len(json.dumps(value)) > MAX_DOCUMENT_BYTES:
        raise ValidationError(f"must be at most {MAX_DOCUMENT_BYTES // 1024} KiB as JSON")


def settings_field(**kwargs) -> fields.Dict:
    return fields.Dict(keys=fields.String(), **kwargs)


def not_sealed(value: dict[str, Any]) -> None:
    """Refuse `{"$secret": "..."}`: the shape of a stored secret is the catalog's own."""
    if contains_sealed(value):
        raise ValidationError(
            f'a mapping whose only key is "{SEALED}" is reserved for stored secrets'
        )


def parameters_field(**kwargs) -> fields.Dict:
    return fields.Dict(keys=fields.String(), validate=[bounded_document, not_sealed], **kwargs)


def bindings_field(**kwargs) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(),
        values=fields.String(validate=DNS_LABEL),
        **kwargs,
    )


# -- requests --------------------------------------------------------------------------------


def host_field() -> fields.String:
    return fields.String(
        load_default=None,
        validate=DNS_LABEL,
        metadata={"description": "the Docker host to run on; default: the least busy one"},
    )


class EnvironmentCreate(Schema):
    name = fields.String(required=True, validate=DNS_LABEL)
    description = fields.String(load_default="", validate=validate.Length(max=10_000))
    settings = settings_field(load_default=dict, validate=bounded_document)
    host = host_field()


class EnvironmentPatch(Schema):
    name = fields.String(validate=DNS_LABEL)
    description = fields.String(validate=validate.Length(max=10_000))
    settings = settings_field(validate=bounded_document)


class EnvironmentArgs(PageArgs):
    pass


class AppCreate(Schema):
    name = fields.String(required=True, validate=DNS_LABEL)
    package = fields.String(required=True, validate=[validate.Length(max=128), FQN])
    # An exact version or a range; absent or null: the newest non-yanked version.
    version = fields.String(load_default=None, allow_none=True, validate=VERSION)
    parameters = parameters_field(load_default=dict)
    bindings = bindings_field(load_default=dict)


class AppPatch(Schema):
    version = fields.String(allow_none=True, validate=VERSION)
    # Replaces the whole object; "********" at a secret's place keeps the stored secret.
    parameters = parameters_field()
    bindings = bindings_field()


# -- responses -------------------------------------------------------------------------------


class Endpoint(Schema):
    service = fields.String()
    container_port = fields.Integer()
    protocol = fields.String()
    # None: on the default engine, whose address the API's PUBLIC_HOST setting gives.
    host = fields.Function(lambda endpoint: endpoint.host or current_settings().public_host)
    port = fields.Integer()


class App(Schema):
    name = fields.String()
    package = fields.String()
    version = fields.String(allow_none=True, metadata={"description": "exact version or range"})
    resolved_version = fields.String(
        allow_none=True, metadata={"description": "what `version` resolves to now"}
    )
    deployed_version = fields.String(
        allow_none=True, metadata={"description": "the version in the current revision"}
    )
    status = fields.String()
    parameters = fields.Dict(metadata={"description": 'x-secret values read "********"'})
    bindings = fields.Dict(keys=fields.String(), values=fields.String())
    endpoints = fields.List(fields.Nested(Endpoint))
    created_at = fields.DateTime()
    problem = fields.String(allow_none=True, metadata={"description": PROBLEM})


class AppUpdated(App):
    """The answer to an app's PATCH: the app, and what a version change migrated."""

    migrated = fields.List(
        fields.String(),
        metadata={
            "description": "what the new version's migrations did to the stored parameters, "
            "one line each (a version change without `parameters`); names, never values"
        },
    )


class Environment(Schema):
    id = fields.String()
    name = fields.String()
    tenant = fields.String()
    host = fields.String(
        allow_none=True, metadata={"description": "its Docker host; null: the default engine"}
    )
    description = fields.String()
    status = fields.String()
    status_detail = fields.String()
    has_pending_changes = fields.Boolean()
    current_revision = fields.Integer(allow_none=True)
    settings = fields.Dict()
    apps = fields.List(fields.Nested(App))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class EnvironmentList(Schema):
    items = fields.List(fields.Nested(Environment), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
