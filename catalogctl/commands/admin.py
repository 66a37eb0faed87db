"""`catalogctl admin` through the API: tenants, tokens, health and metrics.

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
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
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
