"""Webhooks and their deliveries."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from catalog.services.webhooks import EVENTS


class WebhookCreate(Schema):
    url = fields.String(required=True, validate=validate.Length(1, 2000))
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENTS)),
        required=True,
        validate=validate.Length(1, len(EVENTS)),
        metadata={"description": "Any of " + ", ".join(EVENTS)},
    )
    description = fields.String(load_default="", validate=validate.Length(max=200))


class Webhook(Schema):
    id = fields.String()
    tenant = fields.Function(lambda w: w.tenant.name)
    url = fields.String()
    events = fields.List(fields.String())
    description = fields.String()
    created_at = fields.DateTime()


class WebhookCreated(Webhook):
    secret = fields.String(
        attribute="shown_secret",
        metadata={"description": "The signing secret; shown only in this response. Each "
                  "request carries X-Catalog-Signature: sha256=HMAC-SHA256(secret, body)"}
    )  # fmt: skip


class WebhookList(Schema):
    items = fields.List(fields.Nested(Webhook), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class Delivery(Schema):
    id = fields.String()
    event = fields.String()
    status = fields.String(metadata={"description": "pending, delivered or failed"})
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String()
    created_at = fields.DateTime()
    last_attempt_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)


class DeliveryArgs(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class DeliveryList(Schema):
    items = fields.List(fields.Nested(Delivery), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
