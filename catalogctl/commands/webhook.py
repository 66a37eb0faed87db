"""`catalogctl webhook`: a tenant's URLs told of events, and what was delivered to them."""

from __future__ import annotations

import click

from catalogctl.client import path
from catalogctl.context import api, api_options, confirm, yes_option
from catalogctl.output import done, show_list, when

EVENTS = (
    "deployment.succeeded", "deployment.failed", "deployment.rolled_back",
    "app.crashloop", "app.unhealthy", "package.published",
)  # fmt: skip
WEBHOOK_COLUMNS = (
    ("ID", "id"),
    ("TENANT", "tenant"),
    ("URL", "url"),
    ("EVENTS", lambda w: ", ".join(w.get("events") or [])),
    ("CREATED", lambda w: when(w.get("created_at"))),
)
DELIVERY_COLUMNS = (
    ("ID", "id"),
    ("EVENT", "event"),
    ("STATUS", "status"),
    ("ATTEMPTS", "attempts"),
    ("LAST", lambda d: d.get("last_status_code") or d.get("last_error") or "-"),
    ("CREATED", lambda d: when(d.get("created_at"))),
)


@click.group("webhook")
def webhook() -> None:
    """Webhooks: events sent to your URLs, signed (publisher)."""


@webhook.command("add")
@click.argument("target", metavar="URL")
@click.option(
    "--event", "events", multiple=True, required=True, type=click.Choice(EVENTS),
    help="An event to send (repeat for more).",
)  # fmt: skip
@click.option("--description", default="", help="What receives it.")
@api_options
def add_command(target: str, events: tuple[str, ...], description: str) -> None:
    """Send EVENTs to URL; prints the signing secret, shown only now."""
    body = {"url": target, "events": list(events), "description": description}
    created = api().json("POST", "/webhooks", json=body)
    done(
        f"added webhook {created['id']}; its signing secret, shown only now: "
        f"{created['secret']}\n(each request carries X-Catalog-Signature: "
        "sha256=<HMAC-SHA256 of the body with this secret>)",
        created,
    )


@webhook.command("list")
@api_options
def list_command() -> None:
    """Your tenant's webhooks (an admin: every tenant's)."""
    show_list(api().json("GET", "/webhooks")["items"], WEBHOOK_COLUMNS)


@webhook.command("deliveries")
@click.argument("webhook_id", metavar="ID")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@api_options
def deliveries_command(webhook_id: str, limit: int) -> None:
    """A webhook's deliveries, newest first: status, attempts, the last answer."""
    items = api().json("GET", path("webhooks", webhook_id, "deliveries"), params={"limit": limit})
    show_list(items["items"], DELIVERY_COLUMNS)


@webhook.command("remove")
@click.argument("webhook_id", metavar="ID")
@yes_option
@api_options
def remove_command(webhook_id: str, yes: bool) -> None:
    """Remove a webhook and its deliveries."""
    confirm(f"remove webhook {webhook_id}?", yes)
    api().request("DELETE", path("webhooks", webhook_id))
    done(f"removed webhook {webhook_id}")
