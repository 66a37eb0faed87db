"""The audit trail."""

from __future__ import annotations

from datetime import UTC

from marshmallow import Schema, fields, validate

from catalog.schemas.common import PageArgs
from catalog.services.audit import REFUSALS


def _filter(check: validate.Validator, description: str) -> fields.String:
    return fields.String(load_default=None, validate=check, metadata={"description": description})


class AuditArgs(PageArgs):
    tenant = _filter(
        validate.Length(1, 64), "Events of this tenant (name or id); an admin's filter only"
    )
    actor = _filter(validate.Length(1, 32), "Events of the token with this id")
    action = _filter(
        validate.Regexp(r"^[a-z_]+(\.[a-z_]+)*(\.\*)?\Z"),
        "`package.delete`, or every action of a kind: `package.*`",
    )
    object = _filter(
        validate.Length(1, 200), "Events of the object with this id (a package name, an id)"
    )
    result = fields.String(
        load_default=None,
        validate=validate.OneOf(["ok", *REFUSALS.values()]),
    )
    # ISO 8601; without an offset, UTC.
    since = fields.AwareDateTime(
        load_default=None, default_timezone=UTC, metadata={"description": "At or after"}
    )
    until = fields.AwareDateTime(
        load_default=None, default_timezone=UTC, metadata={"description": "Before"}
    )
    after = fields.Integer(
        load_default=None,
        validate=validate.Range(0),
        metadata={"description": "Events after this id, oldest first (to follow the trail)"},
    )


RESULT_DESCRIPTION = (
    "ok, or why a write was refused: unauthorized (401), forbidden (403), conflict (409), "
    "rate_limited (429)"
)


class AuditEvent(Schema):
    id = fields.Integer()
    time = fields.DateTime(attribute="created_at")
    tenant = fields.String(allow_none=True)
    actor = fields.String(allow_none=True, metadata={"description": "The token's id"})
    action = fields.String()
    object_type = fields.String()
    object_id = fields.String()
    result = fields.String(metadata={"description": RESULT_DESCRIPTION})
    detail = fields.Dict()


class AuditList(Schema):
    items = fields.List(fields.Nested(AuditEvent), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
