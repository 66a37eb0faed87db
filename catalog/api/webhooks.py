"""A tenant's webhooks (publisher) and what was delivered to them."""

from __future__ import annotations

from flask_smorest import Blueprint

from catalog import current_settings
from catalog.api.context import db, principal
from catalog.api.docs import problems
from catalog.schemas import webhooks as schemas
from catalog.secretbox import box_of
from catalog.services import webhooks as service

blp = Blueprint("webhooks", __name__, description="Webhooks: events sent to a tenant's URLs")


@blp.route("/webhooks", methods=["POST"])
@problems(400, 403)
@blp.arguments(schemas.WebhookCreate())
@blp.response(201, schemas.WebhookCreated)
def create_webhook(body):
    """Register a URL for events (publisher); its signing secret is in this response only.

    Loopback, private, link-local and reserved addresses are refused unless the operator
    allows them (CATALOG_WEBHOOK_ALLOW).
    """
    session = db()
    allow = service.AllowList.from_setting(current_settings().webhook_allow)
    webhook, secret = service.register(
        session, principal(), url=body["url"], events=body["events"],
        description=body["description"], allow=allow, box=box_of(session),
    )  # fmt: skip
    webhook.shown_secret = secret  # in this response only; stored sealed
    return webhook


@blp.route("/webhooks", methods=["GET"])
@blp.response(200, schemas.WebhookList)
def list_webhooks():
    """The tenant's webhooks (an admin: every tenant's); never their secrets."""
    return {"items": service.list_webhooks(db(), principal()), "next_cursor": None}


@blp.route("/webhooks/<webhook_id>", methods=["DELETE"])
@blp.response(204)
def delete_webhook(webhook_id):
    """Remove a webhook and its deliveries."""
    service.delete_webhook(db(), principal(), webhook_id)
    return "", 204


@blp.route("/webhooks/<webhook_id>/deliveries", methods=["GET"])
@blp.arguments(schemas.DeliveryArgs(), location="query")
@blp.response(200, schemas.DeliveryList)
def list_deliveries(args, webhook_id):
    """A webhook's deliveries, newest first: status, attempts, the last answer."""
    items = service.list_deliveries(db(), principal(), webhook_id, args["limit"])
    return {"items": items, "next_cursor": None}
