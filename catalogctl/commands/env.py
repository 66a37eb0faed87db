"""`catalogctl env`: environments (create, list, show, update, delete, diff, snapshots)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from catalogctl.client import ApiError, path
from catalogctl.commands.values import FILE, key_values, mapping_file
from catalogctl.context import api, api_options, complete_env, confirm, yes_option
from catalogctl.output import done, record, show, show_list, table, when

ENV_COLUMNS = (
    ("NAME", "name"),
    ("STATUS", "status"),
    ("REVISION", "current_revision"),
    ("PENDING", "has_pending_changes"),
    ("APPS", lambda e: len(e.get("apps") or [])),
    ("TENANT", "tenant"),
    ("DESCRIPTION", "description"),
)


def endpoint_text(endpoint: dict) -> str:
    inside = f"{endpoint['service']}:{endpoint['container_port']}"
    return f"{inside}->{endpoint['host']}:{endpoint['port']}"


APP_COLUMNS = (
    ("NAME", "name"),
    ("PACKAGE", "package"),
    ("VERSION", lambda a: a.get("resolved_version") or a.get("version")),
    ("DEPLOYED", "deployed_version"),
    ("STATUS", "status"),
    ("BINDINGS", "bindings"),
    ("ENDPOINTS", lambda a: [endpoint_text(e) for e in a.get("endpoints") or []]),
)


@click.group("env")
def env() -> None:
    """Environments: apps bound together on their own network, deployed as revisions."""


@env.command("create")
@click.argument("name")
@click.option("--description", default="", help="What it is for.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A setting.")
@click.option("--settings-file", type=FILE, help="Settings from a YAML or JSON mapping.")
@click.option("--host", help="The Docker host to run on; default: the least busy one.")
@api_options
def create_command(
    name: str, description: str, settings: tuple[str, ...], settings_file, host
) -> None:
    """Create an empty environment in the token's tenant.

    Settings are visible to every app's templates; a VALUE is JSON when it parses as JSON
    (3, true, [1, 2]), otherwise a string.
    """
    body = {
        "name": name,
        "description": description,
        "settings": {**mapping_file(settings_file, "--settings-file"),
                     **key_values(settings, "--set")},
    }  # fmt: skip
    if host is not None:
        body["host"] = host
    created = api().json("POST", "/environments", json=body)
    done(f"created environment {created['name']}", created)


@env.command("list")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@api_options
def list_command(limit: int) -> None:
    """The token's environments (every tenant's for an admin)."""
    show_list(api().pages("/environments", {}, limit), ENV_COLUMNS)


def show_environment(item: dict) -> None:
    record(
        item,
        (
            ("name", "name"),
            ("tenant", "tenant"),
            ("host", lambda e: e.get("host") or "default"),
            ("status", lambda e: e["status"] + (f" ({e['status_detail']})"
                                                if e.get("status_detail") else "")),
            ("revision", "current_revision"),
            ("pending changes", "has_pending_changes"),
            ("description", "description"),
            ("settings", "settings"),
            ("updated", lambda e: when(e.get("updated_at"))),
        ),
    )  # fmt: skip
    click.echo("")
    table(item.get("apps") or [], APP_COLUMNS)


@env.command("show")
@click.argument("name", shell_complete=complete_env)
@api_options
def show_command(name: str) -> None:
    """Status, settings, current revision, and the apps with status and endpoints."""
    show(api().json("GET", path("environments", name)), show_environment)


@env.command("update")
@click.argument("name", shell_complete=complete_env)
@click.option("--rename", metavar="NEW_NAME", help="A new name.")
@click.option("--description")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Set a setting.")
@click.option("--unset", multiple=True, metavar="KEY", help="Remove a setting.")
@click.option("--settings-file", type=FILE, help="Replace every setting with this mapping.")
@api_options
def update_command(name, rename, description, settings, unset, settings_file: Path | None) -> None:
    """Rename, describe or change the settings; takes effect at the next deploy."""
    client = api()
    current, etag = client.json_with_etag("GET", path("environments", name))
    changes: dict = {}
    if rename:
        changes["name"] = rename
    if description is not None:
        changes["description"] = description
    if settings or unset or settings_file:
        merged = (
            mapping_file(settings_file, "--settings-file")
            if settings_file
            else dict(current.get("settings") or {})
        )
        merged.update(key_values(settings, "--set"))
        for key in unset:
            merged.pop(key, None)
        changes["settings"] = merged
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    headers = {"If-Match": etag} if etag else {}
    updated = client.json("PATCH", path("environments", name), json=changes, headers=headers)
    done(f"updated environment {updated['name']}", updated)


def wait_deleted(client, name: str, timeout: float) -> None:
    """Until the environment is gone (torn down); a failed teardown is an error."""
    # imported when used: SQLAlchemy and Flask would slow every start of the CLI
    from catalog.models.environment import EnvironmentStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = client.json("GET", path("environments", name))
        except ApiError as exc:
            if exc.status == 404:
                return
            raise
        if found["status"] == EnvironmentStatus.DELETE_FAILED:
            raise click.ClickException(
                f"deleting environment {name} failed: {found.get('status_detail') or 'see events'}"
                f"; `catalogctl env delete {name}` tries again"
            )
        time.sleep(0.5)
    raise click.ClickException(
        f"environment {name} is still being deleted after {timeout:g} s; "
        f"`catalogctl env show {name}` tells how it goes"
    )


@env.command("diff")
@click.argument("name", shell_complete=complete_env)
@api_options
def diff_command(name: str) -> None:
    """What deploying the draft now would change, container by container, and why."""
    from catalogctl.commands.deploy import show_plan

    show_plan(api(), name)


@env.command("delete")
@click.argument("name", shell_complete=complete_env)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Until it is gone.")
@click.option("--timeout", type=float, default=300, show_default=True, help="Seconds to wait.")
@yes_option
@api_options
def delete_command(name: str, wait: bool, timeout: float, yes: bool) -> None:
    """Tear down every container of the environment and delete it."""
    confirm(f"Delete environment {name} and every container, network and volume of it", yes)
    client = api()
    client.json("DELETE", path("environments", name))
    if wait:
        wait_deleted(client, name, timeout)
        done(f"deleted environment {name}")
    else:
        done(f"environment {name} is being deleted")


def size_text(size: int | None) -> str:
    """Bytes as a person reads them: 512 B, 1.5 KiB, 100.0 MiB."""
    value, unit = float(size or 0), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"


SNAPSHOT_COLUMNS = (
    ("REVISION", "revision"),
    ("APP", "app"),
    ("SERVICE", "service"),
    ("VOLUME", "volume"),
    ("SIZE", lambda s: size_text(s.get("size_bytes"))),
    ("STATUS", "status"),
    ("CREATED", lambda s: when(s.get("created_at"))),
    ("SNAPSHOT", "snapshot_volume"),
)


@env.command("snapshots")
@click.argument("name", shell_complete=complete_env)
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@api_options
def snapshots_command(name: str, limit: int) -> None:
    """Snapshots of the environment's volumes, made before upgrades changed their data.

    Newest revision first: kept, restored (copied back when the revision was undone),
    failed (the detail says what; never pruned) or pruned (past CATALOG_SNAPSHOT_RETENTION).
    """
    show_list(api().pages(path("environments", name, "snapshots"), {}, limit), SNAPSHOT_COLUMNS)
