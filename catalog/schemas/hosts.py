"""Docker hosts."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from catalog.schemas.common import JsonBoolean
from catalog.schemas.environments import DNS_LABEL

ADDRESS = validate.Length(1, 255)
# An engine address: empty (unknown), or ssh://, unix:// or tcp:// (the last only with TLS,
# which the service checks against the API's CATALOG_DOCKER_TLS_DIR).
ENGINE_URL = [
    validate.Length(max=255),
    validate.Regexp(r"^(?:(?:ssh|unix|tcp)://\S+)?\Z", error="must be ssh://, unix:// or tcp://"),
]


class HostCreate(Schema):
    name = fields.String(required=True, validate=DNS_LABEL)
    public_host = fields.String(
        required=True, validate=ADDRESS,
        metadata={"description": "the address shown in the endpoints of its environments"},
    )  # fmt: skip
    docker_url = fields.String(
        load_default="", validate=ENGINE_URL,
        metadata={"description": "where the API reads container logs: ssh://user@host, "
                  "unix:///path, or tcp://host:2376 when the API has TLS client files "
                  "(CATALOG_DOCKER_TLS_DIR); never plain tcp://"},
    )  # fmt: skip
    enabled = JsonBoolean(
        load_default=True, metadata={"description": "new environments may be placed here"}
    )


class HostPatch(Schema):
    public_host = fields.String(validate=ADDRESS)
    docker_url = fields.String(validate=ENGINE_URL)
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
