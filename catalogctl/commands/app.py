"""`catalogctl app`: the apps of an environment's draft (nothing runs until `deploy`)."""

from __future__ import annotations

from pathlib import Path

import click

from catalogctl.client import path
from catalogctl.commands.env import APP_COLUMNS, endpoint_text
from catalogctl.commands.values import FILE, bindings, key_values, mapping_file
from catalogctl.context import (
    api,
    api_options,
    complete_package,
    confirm,
    env_argument,
    yes_option,
)
from catalogctl.output import done, record, show, show_list, when

PARAM_HELP = (
    "A parameter; repeat for more. VALUE is JSON when it parses as JSON (3, true, [1, 2]), "
    "otherwise a string."
)


def show_app(item: dict) -> None:
    record(
        item,
        (
            ("name", "name"),
            ("package", "package"),
            ("version", lambda a: a.get("version") or "newest"),
            ("resolves to", "resolved_version"),
            ("deployed", "deployed_version"),
            ("status", "status"),
            ("problem", lambda a: a.get("problem") or "none"),
            ("parameters", "parameters"),
            ("bindings", "bindings"),
            ("endpoints", lambda a: [endpoint_text(e) for e in a.get("endpoints") or []]),
            ("added", lambda a: when(a.get("created_at"))),
        ),
    )


@click.group()
def app() -> None:
    """Apps of an environment: package, version, parameters and bindings to other apps."""


@app.command("add")
@env_argument
@click.argument("name")
@click.option(
    "--package",
    required=True,
    shell_complete=complete_package,
    help="The package (e.g. org.example.kvstore).",
)
@click.option("--version", help="An exact version or a range like ^1.2.0; default: the newest.")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help=PARAM_HELP)
@click.option("--params-file", type=FILE, help="Parameters from a YAML or JSON mapping.")
@click.option("--bind", "binds", multiple=True, metavar="SLOT=APP", help="Bind SLOT to an app.")
@api_options
def add_command(env, name, package, version, params, params_file: Path | None, binds) -> None:
    """Add app NAME to environment ENV's draft."""
    body = {
        "name": name,
        "package": package,
        "version": version,
        "parameters": {**mapping_file(params_file, "--params-file"),
                       **key_values(params, "--param")},
        "bindings": bindings(binds),
    }  # fmt: skip
    created = api().json("POST", path("environments", env, "apps"), json=body)
    done(f"added {created['name']} ({created['package']} {created['resolved_version']}) to {env}",
         created)  # fmt: skip


@app.command("list")
@env_argument
@api_options
def list_command(env: str) -> None:
    """The apps of ENV with their status and endpoints."""
    show_list(api().json("GET", path("environments", env))["apps"], APP_COLUMNS)


@app.command("show")
@env_argument
@click.argument("name")
@api_options
def show_command(env: str, name: str) -> None:
    """One app: version, parameters (secrets masked), bindings, status, endpoints."""
    show(api().json("GET", path("environments", env, "apps", name)), show_app)


@app.command("update")
@env_argument
@click.argument("name")
@click.option("--version", help="An exact version or a range.")
@click.option("--latest", is_flag=True, help="Follow the newest version again.")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help=PARAM_HELP)
@click.option("--unset", multiple=True, metavar="KEY", help="Remove a parameter (its default).")
@click.option("--params-file", type=FILE, help="Replace every parameter with this mapping.")
@click.option("--bind", "binds", multiple=True, metavar="SLOT=APP", help="Bind SLOT to an app.")
@click.option("--unbind", multiple=True, metavar="SLOT", help="Remove a binding.")
@api_options
def update_command(env, name, version, latest, params, unset, params_file, binds, unbind) -> None:
    """Change an app's version, parameters or bindings; takes effect at the next deploy.

    Parameters and bindings are merged into the current ones; the change is refused (412)
    when someone else changed the draft in between. A new version alone migrates the
    parameters by its package's migrations (printed); with parameters given too, they are
    sent as the new version's.
    """
    if version and latest:
        raise click.UsageError("--version and --latest exclude each other")
    client = api()
    current, etag = client.json_with_etag("GET", path("environments", env, "apps", name))
    changes: dict = {}
    if version or latest:
        changes["version"] = None if latest else version
    if params or unset or params_file:
        merged = (
            mapping_file(params_file, "--params-file")
            if params_file
            else dict(current.get("parameters") or {})
        )
        merged.update(key_values(params, "--param"))
        for key in unset:
            merged.pop(key, None)
        changes["parameters"] = merged
    if binds or unbind:
        merged_bindings = {**(current.get("bindings") or {}), **bindings(binds)}
        for slot in unbind:
            merged_bindings.pop(slot, None)
        changes["bindings"] = merged_bindings
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    headers = {"If-Match": etag} if etag else {}
    updated = client.json(
        "PATCH", path("environments", env, "apps", name), json=changes, headers=headers
    )
    lines = [f"updated {name} in {env}; deploy to apply: catalogctl deploy {env}"]
    lines += [f"  migrated: {line}" for line in updated.get("migrated") or []]
    done("\n".join(lines), updated)


@app.command("remove")
@env_argument
@click.argument("name")
@yes_option
@api_options
def remove_command(env: str, name: str, yes: bool) -> None:
    """Remove an app from the draft; the next deploy tears it down."""
    confirm(f"Remove {name} from {env} (its containers go at the next deploy)", yes)
    api().json("DELETE", path("environments", env, "apps", name))
    done(f"removed {name} from {env}; deploy to apply: catalogctl deploy {env}")


@app.command("endpoint")
@env_argument
@click.argument("name")
@click.option("--service", help="Only this service's endpoints.")
@api_options
def endpoint_command(env: str, name: str, service: str | None) -> None:
    """The app's published addresses as URLs, one a line (for curl or a browser)."""
    found = api().json("GET", path("environments", env, "apps", name))
    endpoints = [
        e for e in found.get("endpoints") or [] if service is None or e["service"] == service
    ]
    if not endpoints:
        where = f"service {service} of " if service else ""
        raise click.ClickException(
            f"{where}app {name} in {env} has no published endpoint; is it deployed? "
            f"(catalogctl env show {env})"
        )

    def urls(items: list[dict]) -> None:
        for e in items:
            click.echo(f"http://{e['host']}:{e['port']}")

    show(endpoints, urls)
