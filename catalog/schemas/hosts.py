"""Docker hosts."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from catalog.schemas.common import JsonBoolean
from catalog.schemas.environments import DNS_LABEL

ADDRESS = validate.Length(1, 255)


class HostCreate(Schema):
    name = fields.String(required=True, validate=DNS_LABEL)
    public_host = fields.String(
        required=True, validate=ADDRESS,
        metadata={"description": "the address shown in the endpoints of its environments"},
    )  # fmt: skip
    docker_url = fields.String(
        load_default="", validate=validate.Length(max=255),
        metadata={"description": "where the API reads container logs, e.g. tcp://10.0.0.5:2376"},
    )  # fmt: skip
    enabled = JsonBoolean(
        load_default=True, metadata={"description": "new environments may be placed here"}
    )


class HostPatch(Schema):
    public_host = fields.String(validate=ADDRESS)
    docker_url = fields.String(validate=validate.Length(max=255))
    enabled = JsonBoolean()


class Host(Schema):
    id = fields.String()
    name = fields.String()
    public_host = fields.String()
    docker_url = fields.String()
    enabled = fields.Boolean()
    environments = fields.Integer(metadata={"description": "environments placed here"})
    created_at = fields.DateTime()


class HostList(Schema):
    items = fields.List(fields.Nested(Host), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
