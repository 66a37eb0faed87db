"""`catalogctl admin` through the API: tenants, tokens, hosts, health and metrics.

`admin bootstrap` (the first token, written straight into this machine's database) lives in
catalogctl/server.py with the other commands that run the service itself.
"""

from __future__ import annotations

import re

import click

from catalogctl.client import ApiError, path
from catalogctl.context import api, api_options, confirm, output_format, yes_option
from catalogctl.output import done, dump, show, show_list, when
from catalogctl.server import admin

ROLES = ("admin", "publisher", "deployer", "viewer")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

TOKEN_COLUMNS = (
    ("ID", "id"),
    ("TENANT", "tenant"),
    ("ROLE", "role"),
    ("DESCRIPTION", "description"),
    ("CREATED", lambda t: when(t.get("created_at"))),
    ("EXPIRES", lambda t: when(t.get("expires_at")) if t.get("expires_at") else "never"),
)


def duration(text: str | None) -> int | None:
    """`3600`, `90m`, `12h`, `30d` -> seconds."""
    if text is None:
        return None
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip(), re.ASCII)
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 3600, 90m, 12h or 30d")
    return int(match[1]) * UNITS[match[2] or "s"]


@admin.group("tenant")
def tenant() -> None:
    """Tenants: who owns packages and environments."""


@tenant.command("create")
@click.argument("name")
@api_options
def tenant_create(name: str) -> None:
    """Create a tenant (admin)."""
    created = api().json("POST", "/tenants", json={"name": name})
    done(f"created tenant {created['name']}", created)


@tenant.command("list")
@api_options
def tenant_list() -> None:
    """Tenants: every one for an admin, the token's own otherwise."""
    items = api().json("GET", "/tenants")["items"]
    created = ("CREATED", lambda t: when(t.get("created_at")))
    show_list(items, (("NAME", "name"), ("ID", "id"), created))


@admin.group("token")
def token() -> None:
    """API tokens: a secret bound to a tenant and a role, shown once."""


@token.command("create")
@click.option("--tenant", required=True, help="The tenant the token acts for.")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What it may do.")
@click.option("--expires-in", help="Lifetime: seconds, or 90m, 12h, 30d; default: none.")
@click.option("--description", default="", help="Who or what uses it.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the secret.")
@api_options
def token_create(tenant: str, role: str, expires_in, description: str, quiet: bool) -> None:
    """Issue a token (admin); its secret is shown now and never again."""
    body = {
        "tenant": tenant,
        "role": role,
        "expires_in": duration(expires_in),
        "description": description,
    }
    created = api().json("POST", "/tokens", json=body)
    if quiet:
        click.echo(created["token"])
    elif output_format() != "table":
        dump(created)
    else:
        click.echo(f"token {created['id']} ({created['role']} of {created['tenant']}); "
                   "its secret, shown only now:")  # fmt: skip
        click.echo(created["token"])


@token.command("list")
@api_options
def token_list() -> None:
    """Live tokens (every one for an admin, the caller's own otherwise); never their secrets."""
    show_list(api().json("GET", "/tokens")["items"], TOKEN_COLUMNS)


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@yes_option
@api_options
def token_revoke(token_id: str, yes: bool) -> None:
    """Revoke a token; it stops working at once."""
    confirm(f"Revoke token {token_id}", yes)
    api().json("DELETE", path("tokens", token_id))
    done(f"revoked token {token_id}")


HOST_COLUMNS = (
    ("NAME", "name"),
    ("PUBLIC HOST", "public_host"),
    ("ENGINE", "docker_url"),
    ("ENABLED", "enabled"),
    ("ENVIRONMENTS", "environments"),
)


@admin.group("host")
def host() -> None:
    """Docker hosts: the engines environments are placed on.

    \b
    On each host run its worker and tracker with its name:
      catalogctl worker --host-name NAME
      catalogctl tracker --host-name NAME
    """


@host.command("add")
@click.argument("name")
@click.option("--public-host", required=True, help="The address shown in endpoints.")
@click.option(
    "--docker-url", default="",
    help="Where the API reads logs: ssh://user@host, or tcp://host:2376 only with TLS "
    "(the API's CATALOG_DOCKER_TLS_DIR).",
)  # fmt: skip
@click.option("--disabled", is_flag=True, help="Place no new environments here yet.")
@api_options
def host_add(name: str, public_host: str, docker_url: str, disabled: bool) -> None:
    """Register a Docker host (admin)."""
    body = {"name": name, "public_host": public_host, "docker_url": docker_url,
            "enabled": not disabled}  # fmt: skip
    created = api().json("POST", "/hosts", json=body)
    done(f"added host {created['name']}; on it run `catalogctl worker --host-name {name}` and "
         f"`catalogctl tracker --host-name {name}`", created)  # fmt: skip


@host.command("list")
@api_options
def host_list() -> None:
    """Registered hosts and how many environments each runs (admin)."""
    show_list(api().json("GET", "/hosts")["items"], HOST_COLUMNS)


@host.command("update")
@click.argument("name")
@click.option("--public-host", help="The address shown in endpoints.")
@click.option("--docker-url", help="Where the API reads logs.")
@click.option("--enable/--disable", "enabled", default=None,
              help="Whether new environments may be placed here.")  # fmt: skip
@api_options
def host_update(name: str, public_host, docker_url, enabled) -> None:
    """Change a host's addresses, or stop placing new environments on it (admin)."""
    changes = {k: v for k, v in (("public_host", public_host), ("docker_url", docker_url),
                                 ("enabled", enabled)) if v is not None}  # fmt: skip
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    updated = api().json("PATCH", path("hosts", name), json=changes)
    done(f"updated host {updated['name']}", updated)


@host.command("remove")
@click.argument("name")
@yes_option
@api_options
def host_remove(name: str, yes: bool) -> None:
    """Unregister a host with no environments (admin)."""
    confirm(f"Remove host {name}", yes)
    api().json("DELETE", path("hosts", name))
    done(f"removed host {name}")


@admin.command("health")
@api_options
def health() -> None:
    """Whether the API and its database answer (needs no token)."""
    client = api()
    try:
        answer = client.json("GET", "/health")
    except ApiError as exc:
        if exc.status == 503:
            raise click.ClickException(
                f"{client.url}: the API answers, its database does not"
            ) from None
        raise
    show(answer, lambda a: click.echo(f"{client.url}: {a['status']} (database {a['database']})"))


@admin.command("metrics")
@api_options
def metrics() -> None:
    """Counters and gauges in the Prometheus text format (admin)."""
    click.echo(api().request("GET", "/metrics").text, nl=False)
