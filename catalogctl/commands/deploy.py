"""`catalogctl deploy` (with live progress) and `catalogctl deployment` (list, show, cancel)."""

from __future__ import annotations

import time
from contextlib import closing
from datetime import datetime

import click
import requests

from catalogctl.client import Client, path
from catalogctl.commands.events import EVENT_COLUMNS, echo_event
from catalogctl.context import api, api_options, confirm, env_argument, output_format, yes_option
from catalogctl.output import done, dump, record, show, show_list, table, when

# The API sends a keep-alive every 15 s on a quiet stream; one silent for longer is dropped
# and reopened after the last event seen.
SILENCE_SECONDS = 25.0

DEPLOYMENT_COLUMNS = (
    ("REVISION", "revision"),
    ("STATUS", "status"),
    ("FROM", "from_revision"),
    ("APPS", lambda d: [f"{a['name']}={a['version']}" for a in d.get("apps") or []]),
    ("CREATED", lambda d: when(d.get("created_at"))),
    ("FINISHED", lambda d: when(d.get("finished_at"))),
    ("ERROR", "error"),
)


class DeploymentFailed(click.ClickException):
    """The deployment ended other than `succeeded`: the reason in one line."""


def _seconds(deployment: dict) -> str:
    try:
        start = datetime.fromisoformat(deployment["started_at"] or deployment["created_at"])
        end = datetime.fromisoformat(deployment["finished_at"])
    except (KeyError, TypeError, ValueError):
        return ""
    return f" in {(end - start).total_seconds():.1f} s"


def outcome(env: str, deployment: dict, serving: int | None) -> str:
    """The last line of a deploy: what happened, and for a failure why (raised)."""
    # imported when used: SQLAlchemy and Flask would slow every start of the CLI
    from catalog.models.deployment import DeploymentStatus

    revision, status = deployment["revision"], deployment["status"]
    reason = (deployment.get("error") or "").removeprefix(f"revision {revision} failed: ")
    if status == DeploymentStatus.SUCCEEDED:
        return f"revision {revision} of {env} is deployed{_seconds(deployment)}"
    if status == DeploymentStatus.ROLLED_BACK:
        keeps = f"revision {serving} keeps serving" if serving else "the previous revision serves"
        raise DeploymentFailed(
            f"revision {revision} failed and was rolled back ({keeps}): {reason}"
        )
    if status == DeploymentStatus.CANCELLED:
        raise DeploymentFailed(
            f"revision {revision} was cancelled" + (f": {reason}" * bool(reason))
        )
    raise DeploymentFailed(f"revision {revision} failed: {reason or 'see its events'}")


def follow(client: Client, env: str, revision: int, timeout: float, *, err: bool) -> dict:
    """Print the revision's events as they come until it finishes; its final state.

    The stream's `end` event says the revision has finished and every event of it was sent,
    so the deployment is read once, at the end (or when the time is up).
    """
    # imported when used: SQLAlchemy and Flask would slow every start of the CLI
    from catalog.models.deployment import FINISHED

    deployment_path = path("environments", env, "deployments", revision)
    deadline = time.monotonic() + timeout
    last = 0
    while time.monotonic() <= deadline:
        try:
            stream = client.stream(
                path("environments", env, "events"),
                {"after": last, "revision": revision},
                read_timeout=SILENCE_SECONDS,
            )
            with closing(stream):
                for event in stream:
                    if event.event == "end":
                        return client.json("GET", deployment_path)
                    if isinstance(event.data, dict):
                        echo_event(event.data, err=err)
                        last = event.data.get("id", last)
                    if time.monotonic() > deadline:
                        break
        except requests.RequestException:
            pass  # a silence or a dropped stream: reopen after `last`
    deployment = client.json("GET", deployment_path)
    if deployment["status"] in FINISHED:  # it finished as the time ran out
        for event in deployment.get("events") or []:
            if event["id"] > last:
                echo_event(event, err=err)
        return deployment
    raise click.ClickException(
        f"revision {revision} of {env} is still {deployment['status']} after {timeout:g} s;"
        f" it goes on: `catalogctl deployment show {env} {revision}`, or cancel it with "
        f"`catalogctl deployment cancel {env} {revision}`"
    )


@click.command("deploy")
@env_argument
@click.option(
    "--from-revision",
    type=click.IntRange(1),
    metavar="K",
    help="Roll back: deploy revision K's snapshot again, as a new revision.",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow it to the end.")
@click.option("--timeout", type=float, default=1800, show_default=True, help="Seconds to follow.")
@click.option(
    "--dry-run", is_flag=True, help="Print what the deploy would change, and deploy nothing."
)
@api_options
def deploy(env: str, from_revision: int | None, wait: bool, timeout: float, dry_run: bool) -> None:
    """Deploy ENV's draft as a new revision, and follow it live until it finishes.

    Exits non-zero with the reason when the deployment fails, is rolled back or is
    cancelled. With -o json/yaml the events go to standard error and the final deployment
    to standard output. --dry-run prints the plan (`catalogctl env diff`) instead.
    """
    # imported when used: SQLAlchemy and Flask would slow every start of the CLI
    from catalog.models.deployment import DeploymentStatus

    client = api()
    if dry_run:
        if from_revision:
            raise click.UsageError("--dry-run plans the draft; it takes no --from-revision")
        show_plan(client, env)
        return
    body = {"from_revision": from_revision} if from_revision else {}
    created = client.json("POST", path("environments", env, "deployments"), json=body)
    revision = created["revision"]
    if not wait:
        source = f" from revision {from_revision}" if from_revision else ""
        done(f"revision {revision} of {env} queued{source}; follow it with "
             f"`catalogctl events {env} --revision {revision} -f`", created)  # fmt: skip
        return
    people = output_format() == "table"
    try:
        final = follow(client, env, revision, timeout, err=not people)
    except KeyboardInterrupt:
        raise click.ClickException(
            f"stopped following; revision {revision} goes on (`catalogctl deployment show "
            f"{env} {revision}`, `catalogctl deployment cancel {env} {revision}`)"
        ) from None
    serving = None
    if final["status"] == DeploymentStatus.ROLLED_BACK:
        serving = client.json("GET", path("environments", env)).get("current_revision")
    if not people:
        dump(final)
    message = outcome(env, final, serving)
    if people:
        click.echo(click.style(message, fg="green"))


PLAN_COLUMNS = (
    ("APP", "app"),
    ("SERVICE", "service"),
    ("ACTION", "action"),
    ("WHY", lambda c: "; ".join(c.get("reasons") or [])),
)
PLAN_STYLE = {"create": "green", "replace": "yellow", "remove": "red"}


def show_plan(client: Client, env: str) -> None:
    """What deploying ENV's draft now would change (POST /environments/{env}/plan)."""
    planned = client.json("POST", path("environments", env, "plan"))
    if output_format() != "table":
        dump(planned)
        return
    changes = [c for c in planned["changes"] if c["action"] != "keep"]
    counts = planned["summary"]
    summary = (
        f"revision {planned['revision']} of {env} would create {counts['create']}, replace "
        f"{counts['replace']}, remove {counts['remove']} and keep {counts['keep']} container(s)"
    )
    if changes:
        for change in changes:
            line = f"{change['action']:<8} {change['app']}/{change['service']}"
            reasons = "; ".join(change.get("reasons") or [])
            click.echo(click.style(f"{line}  {reasons}", fg=PLAN_STYLE.get(change["action"])))
    else:
        summary = f"revision {planned['revision']} of {env} would change nothing"
    click.echo(summary)


@click.group()
def deployment() -> None:
    """Revisions of an environment: list, show (plan and events), cancel."""


@deployment.command("list")
@env_argument
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@api_options
def list_command(env: str, limit: int) -> None:
    """ENV's revisions, newest first."""
    items = api().pages(path("environments", env, "deployments"), {}, limit)
    show_list(items, DEPLOYMENT_COLUMNS)


def _show_deployment(item: dict) -> None:
    record(
        item,
        (
            ("revision", "revision"),
            ("status", "status"),
            ("from revision", "from_revision"),
            ("error", lambda d: d.get("error") or None),
            ("apps", DEPLOYMENT_COLUMNS[3][1]),
            ("attempts", "attempts"),
            ("created", lambda d: when(d.get("created_at"))),
            ("started", lambda d: when(d.get("started_at"))),
            ("finished", lambda d: when(d.get("finished_at"))),
        ),
    )
    if item.get("plan"):
        click.echo("")
        table(
            item["plan"],
            [("ACTION", "action"), ("APP", "app"), ("SERVICE", "service"),
             ("REPLICA", "replica"), ("REASON", "reason")],
        )  # fmt: skip
    click.echo("")
    table(item.get("events") or [], [c for c in EVENT_COLUMNS if c[0] != "REVISION"])


@deployment.command("show")
@env_argument
@click.argument("revision", type=click.IntRange(1))
@api_options
def show_command(env: str, revision: int) -> None:
    """One revision: status, the apps and versions it deploys, its plan and its events."""
    show(api().json("GET", path("environments", env, "deployments", revision)), _show_deployment)


@deployment.command("cancel")
@env_argument
@click.argument("revision", type=click.IntRange(1))
@yes_option
@api_options
def cancel_command(env: str, revision: int, yes: bool) -> None:
    """Cancel a queued or running revision; what it changed is undone."""
    confirm(f"Cancel revision {revision} of {env} (its changes are undone)", yes)
    answer = api().json("POST", path("environments", env, "deployments", revision, "cancel"))
    done(f"cancelling revision {revision} of {env} (now {answer['status']})", answer)
