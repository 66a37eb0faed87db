"""`catalogctl events`: what happened in an environment, or what happens now (`--follow`)."""

from __future__ import annotations

import json
from typing import Any

import click

from catalogctl.client import path
from catalogctl.context import api, api_options, env_argument, output_format
from catalogctl.output import show_list, when

STYLE: dict[str, dict[str, Any]] = {
    "error": {"fg": "red", "bold": True},
    "warning": {"fg": "yellow"},
}

EVENT_COLUMNS = (
    ("ID", "id"),
    ("TIME", lambda e: when(e.get("time"))),
    ("REVISION", "revision"),
    ("LEVEL", "level"),
    ("WHERE", lambda e: where(e) or "-"),
    ("MESSAGE", "message"),
)


def where(event: dict) -> str:
    return "/".join(part for part in (event.get("app"), event.get("service")) if part)


def event_line(event: dict) -> str:
    """`12:00:01 front/web: message`, coloured by level on a terminal."""
    clock = when(event.get("time"))[-8:]
    place = where(event)
    text = f"{clock} {place + ': ' if place else ''}{event.get('message', '')}"
    return click.style(text, **STYLE.get(event.get("level") or "", {}))


def echo_event(event: dict, *, err: bool = False) -> None:
    """One event while following: a line for people, a JSON line for json/yaml output."""
    if output_format() == "table":
        click.echo(event_line(event), err=err)
    else:
        click.echo(json.dumps(event, ensure_ascii=False), err=err)


@click.command("events")
@env_argument
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events (Ctrl-C stops).")
@click.option("--revision", type=click.IntRange(1), help="Only this revision's events.")
@click.option("--after", type=click.IntRange(0), default=0, help="Only events after this id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=200, show_default=True)
@api_options
def events(env: str, follow: bool, revision: int | None, after: int, limit: int) -> None:
    """Events of environment ENV: deployments, containers, repairs.

    With --follow, events stream as they happen (one JSON object a line with -o json); with
    --revision too, until that revision has finished.
    """
    client = api()
    params = {"after": after, "revision": revision, "limit": limit}
    if not follow:
        items = client.json("GET", path("environments", env, "events"), params=params)["items"]
        show_list(items, EVENT_COLUMNS)
        return
    try:
        while True:  # the server ends a stream after an hour: carry on after the last id
            for event in client.stream(path("environments", env, "events"), params):
                if event.event == "end":  # the followed --revision has finished
                    return
                if isinstance(event.data, dict):
                    echo_event(event.data)
                    params["after"] = event.data.get("id", params["after"])
    except KeyboardInterrupt:
        return
