"""`catalogctl template`: environments kept as templates, and new environments made from them."""

from __future__ import annotations

from pathlib import Path

import click

from catalogctl.client import path
from catalogctl.commands.values import FILE, key_values, mapping_file
from catalogctl.context import (
    api,
    api_options,
    complete_env,
    complete_template,
    confirm,
    yes_option,
)
from catalogctl.output import done, record, show, show_list, table, when

TEMPLATE_COLUMNS = (
    ("NAME", "name"),
    ("APPS", lambda t: [a["name"] for a in t.get("apps") or []]),
    ("FROM", "source"),
    ("TENANT", "tenant"),
    ("DESCRIPTION", "description"),
)
TEMPLATE_APP_COLUMNS = (
    ("NAME", "name"),
    ("PACKAGE", "package"),
    ("VERSION", lambda a: a.get("version") or "newest"),
    ("PARAMETERS", "parameters"),
    ("BINDINGS", "bindings"),
)


def template_argument(f):
    """TEMPLATE: a template's name (completed from the API)."""
    return click.argument("template", shell_complete=complete_template)(f)


@click.group()
def template() -> None:
    """Templates: an environment's apps and settings, kept to make more environments like it."""


@template.command("create")
@click.argument("name")
@click.option(
    "--from-env",
    "source",
    metavar="ENV",
    shell_complete=complete_env,
    help="Keep this environment's draft: its apps and settings.",
)
@click.option(
    "-f",
    "--file",
    "spec_file",
    type=FILE,
    help="A YAML or JSON file with `apps` (as `app add` takes them) and `settings`.",
)
@click.option("--description", help="What it is for.")
@api_options
def create_command(name: str, source: str | None, spec_file: Path | None, description) -> None:
    """Create template NAME from an environment or from a file.

    The apps must pass the checks a deployment makes. A file looks like:

    \b
      settings: {site_name: Shop}
      apps:
        - {name: db, package: org.example.mysql, version: ^8.0.0}
        - name: web
          package: org.example.wordpress
          parameters: {title: Shop}
          bindings: {db: db}
    """
    if (source is None) == (spec_file is None):
        raise click.UsageError("give either --from-env ENV or --file FILE")
    body: dict = {"name": name}
    if source is not None:
        body["environment"] = source
    else:
        spec = mapping_file(spec_file, "--file")
        body.update({k: spec[k] for k in ("apps", "settings", "description") if k in spec})
    if description is not None:
        body["description"] = description
    created = api().json("POST", "/templates", json=body)
    done(f"created template {created['name']} ({apps_text(len(created['apps']))})", created)


@template.command("list")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@api_options
def list_command(limit: int) -> None:
    """The token's templates (every tenant's for an admin)."""
    show_list(api().pages("/templates", {}, limit), TEMPLATE_COLUMNS)


def show_template(item: dict) -> None:
    record(
        item,
        (
            ("name", "name"),
            ("tenant", "tenant"),
            ("made from", "source"),
            ("description", "description"),
            ("settings", "settings"),
            ("created", lambda t: when(t.get("created_at"))),
        ),
    )
    click.echo("")
    table(item.get("apps") or [], TEMPLATE_APP_COLUMNS)


@template.command("show")
@template_argument
@api_options
def show_command(template: str) -> None:
    """A template's settings and apps (secrets masked)."""
    show(api().json("GET", path("templates", template)), show_template)


@template.command("delete")
@template_argument
@yes_option
@api_options
def delete_command(template: str, yes: bool) -> None:
    """Delete a template; environments made from it stay."""
    confirm(f"Delete template {template}", yes)
    api().json("DELETE", path("templates", template))
    done(f"deleted template {template}")


def apps_text(count: int) -> str:
    return f"{count} app" if count == 1 else f"{count} apps"


def app_parameters(pairs: tuple[str, ...], files: tuple[str, ...]) -> dict[str, dict]:
    """Parameters by app: each `APP=FILE` file's mapping, then `APP.KEY=VALUE` pairs over it.

    KEY is a top-level parameter (`-p web.title=Shop` -> {"web": {"title": "Shop"}}); a nested
    object is given whole, or in a file.
    """
    by_app: dict[str, dict] = {}
    for pair in files:
        app, sep, name = pair.partition("=")
        if not sep or not app or not name:
            raise click.BadParameter(f"{pair!r} is not APP=FILE", param_hint="--params-file")
        path = FILE.convert(name, None, None)
        by_app.setdefault(app, {}).update(mapping_file(path, "--params-file"))
    for key, value in key_values(pairs, "--param").items():
        app, dot, name = key.partition(".")
        if not dot or not app or not name:
            raise click.BadParameter(f"{key!r} is not APP.KEY", param_hint="--param")
        by_app.setdefault(app, {})[name] = value
    return by_app


@template.command("use")
@template_argument
@click.argument("env")
@click.option("--description", help="What it is for; default: the template's description.")
@click.option("--host", help="The Docker host to run on; default: the least busy one.")
@click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE", help="A setting, over the template's."
)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="APP.KEY=VALUE",
    help="A parameter of one app, over the template's; VALUE is JSON when it parses.",
)
@click.option(
    "--params-file",
    "params_files",
    multiple=True,
    metavar="APP=FILE",
    help="Parameters of one app from a YAML or JSON mapping, over the template's.",
)
@api_options
def use_command(template: str, env: str, description, host, settings, params, params_files) -> None:
    """Make environment ENV from TEMPLATE; `catalogctl deploy ENV` then runs it.

    The parameters given here replace the template's app by app, key by key (top-level keys).
    """
    body: dict = {
        "name": env,
        "settings": key_values(settings, "--set"),
        "parameters": app_parameters(params, params_files),
    }
    if description is not None:
        body["description"] = description
    if host is not None:
        body["host"] = host
    created = api().json("POST", path("templates", template, "environments"), json=body)
    apps = apps_text(len(created["apps"]))
    done(f"created environment {created['name']} from template {template} ({apps}); "
         f"deploy it with `catalogctl deploy {env}`", created)  # fmt: skip
