"""`catalogctl registry`: a tenant's credentials for private registries, which its
deployments pull images with (publisher; an admin for any tenant)."""

from __future__ import annotations

import sys

import click

from catalogctl.client import path
from catalogctl.context import api, api_options, confirm, yes_option
from catalogctl.output import done, show_list, when

REGISTRY_COLUMNS = (
    ("ID", "id"),
    ("TENANT", "tenant"),
    ("SERVER", "server"),
    ("USERNAME", "username"),
    ("CREATED", lambda r: when(r.get("created_at"))),
)


@click.group("registry")
def registry() -> None:
    """Private registries: credentials your deployments pull images with (publisher)."""


def read_password(from_stdin: bool) -> str:
    """The password from standard input (one trailing newline dropped, as `docker login
    --password-stdin` does), else asked for on the terminal; never an argument."""
    if from_stdin:
        password = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    elif sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, err=True)
    else:
        raise click.UsageError("pass --password-stdin: there is no terminal to ask for it")
    if not password:
        raise click.UsageError("the password is empty")
    return password


@registry.command("add")
@click.argument("server", metavar="SERVER")
@click.option("-u", "--username", required=True, help="The registry account's name.")
@click.option(
    "--password-stdin", is_flag=True,
    help="Read the password (or token) from standard input; otherwise it is asked for.",
)  # fmt: skip
@click.option("--tenant", help="The tenant the credentials are for (admin).")
@api_options
def add_command(server: str, username: str, password_stdin: bool, tenant: str | None) -> None:
    """Keep credentials for SERVER (host[:port], as image references name the registry).

    Only your tenant's deployments pull with them. The password is stored encrypted and never
    shown again.
    """
    body = {"server": server, "username": username, "password": read_password(password_stdin)}
    if tenant:
        body["tenant"] = tenant
    created = api().json("POST", "/registries", json=body)
    done(
        f"added credentials for {created['server']} ({created['id']}) of tenant "
        f"{created['tenant']}",
        created,
    )


@registry.command("list")
@click.option("--tenant", help="Only this tenant's (admin).")
@api_options
def list_command(tenant: str | None) -> None:
    """Your tenant's registry credentials (an admin: every tenant's); never a password."""
    params = {"tenant": tenant} if tenant else {}
    show_list(api().pages("/registries", params, None), REGISTRY_COLUMNS)


@registry.command("remove")
@click.argument("registry_id", metavar="ID")
@yes_option
@api_options
def remove_command(registry_id: str, yes: bool) -> None:
    """Forget registry credentials: deploys stop pulling with them at once."""
    confirm(f"remove registry credentials {registry_id}?", yes)
    api().request("DELETE", path("registries", registry_id))
    done(f"removed registry credentials {registry_id}")
