"""`catalogctl audit`: who changed what, and which writes were refused."""

from __future__ import annotations

import json
import time

import click

from catalogctl.context import api, api_options, output_format
from catalogctl.output import show_list, when

AUDIT_COLUMNS = (
    ("ID", "id"),
    ("TIME", lambda e: when(e.get("time"))),
    ("TENANT", lambda e: e.get("tenant") or "-"),
    ("ACTOR", lambda e: e.get("actor") or "-"),
    ("ACTION", "action"),
    ("OBJECT", lambda e: f"{e.get('object_type')} {e.get('object_id')}"),
    ("RESULT", "result"),
)
FOLLOW_SECONDS = 2.0


@click.group("audit")
def audit() -> None:
    """The audit trail (an admin: every tenant's; a publisher: its own tenant's)."""


@audit.command("list")
@click.option("--tenant", help="Only this tenant's events (admin).")
@click.option("--actor", metavar="TOKEN_ID", help="Only events of this token.")
@click.option("--action", help="An action (package.delete) or a kind of them (package.*).")
@click.option("--object", "object_id", metavar="ID", help="Only events of this object.")
@click.option(
    "--result",
    type=click.Choice(["ok", "unauthorized", "forbidden", "conflict", "rate_limited"]),
    help="ok, or why a write was refused.",
)
@click.option("--since", metavar="TIME", help="At or after this ISO 8601 time (UTC if bare).")
@click.option("--until", metavar="TIME", help="Before this ISO 8601 time.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Then keep printing new events (Ctrl-C).")
@api_options
def audit_list(follow: bool, limit: int, object_id: str | None, **filters) -> None:
    """Audit events, newest first; with --follow, the latest ones and then each new one."""
    client = api()
    params = {k: v for k, v in {**filters, "object": object_id}.items() if v is not None}
    items = client.pages("/audit", params, limit)
    if not follow:
        show_list(items, AUDIT_COLUMNS)
        return
    last = max((e["id"] for e in items), default=0)
    try:
        for event in reversed(items):
            echo_event(event)
        while True:
            time.sleep(FOLLOW_SECONDS)
            for event in client.pages("/audit", {**params, "after": last}, None):
                echo_event(event)
                last = event["id"]
    except KeyboardInterrupt:
        return


def echo_event(event: dict) -> None:
    """One event while following: a line for people, a JSON line for json/yaml output."""
    if output_format() != "table":
        click.echo(json.dumps(event, ensure_ascii=False))
        return
    who = event.get("actor") or (event.get("detail") or {}).get("address") or "-"
    line = (
        f"{when(event.get('time'))} {event.get('tenant') or '-'} {who} {event['action']} "
        f"{event['object_type']} {event['object_id']} {event['result']}"
    )
    click.echo(click.style(line, fg=None if event["result"] == "ok" else "yellow"))
