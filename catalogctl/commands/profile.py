"""`catalogctl login` and `catalogctl profile`: named API addresses and tokens, saved."""

from __future__ import annotations

import os
import sys

import click

from catalogctl import config
from catalogctl.client import DEFAULT_URL, Client
from catalogctl.context import confirm, options, yes_option
from catalogctl.output import show_list


@click.command("login")
@click.option("--profile", "name", default="default", show_default=True, help="Save as this.")
@click.option("--url", help=f"API address (default: CATALOG_URL, the profile's, {DEFAULT_URL}).")
@click.option("--token", help="API token (default: CATALOG_TOKEN, or asked for).")
@click.option("--use/--no-use", default=True, show_default=True, help="Make it the current one.")
def login(name: str, url: str | None, token: str | None, use: bool) -> None:
    """Check a token against the API and save it with the address as a profile (mode 0600)."""
    cfg = config.load()
    known = cfg.profiles.get(name)
    url = url or options().url or os.environ.get("CATALOG_URL") or (known.url if known else None)
    url = (url or DEFAULT_URL).rstrip("/")
    token = token or options().token or os.environ.get("CATALOG_TOKEN")
    if not token:
        if not sys.stdin.isatty():
            raise click.UsageError("give --token (or CATALOG_TOKEN); there is no terminal to ask")
        token = click.prompt("Token", hide_input=True, err=True)
    Client(url, token).json("GET", "/tokens")  # 401 for a wrong token, one line
    cfg.profiles[name] = config.Profile(url=url, token=token)
    if use or cfg.current is None:
        cfg.current = name
    cfg.save()
    current = " (current)" if cfg.current == name else ""
    click.echo(f"logged in to {url}; saved as profile {name}{current} in {cfg.path}")


@click.group()
def profile() -> None:
    """Profiles saved by `catalogctl login`."""


def _masked(token: str | None) -> str:
    return f"{token[:8]}…" if token else "-"


@profile.command("list")
def list_command() -> None:
    """Every profile; the current one is marked *."""
    cfg = config.load()
    rows = [
        {"current": "*" if name == cfg.current else " ", "name": name, "url": p.url,
         "token": _masked(p.token)}
        for name, p in sorted(cfg.profiles.items())
    ]  # fmt: skip
    show_list(rows, (("", "current"), ("NAME", "name"), ("URL", "url"), ("TOKEN", "token")))


@profile.command("use")
@click.argument("name")
def use_command(name: str) -> None:
    """Make NAME the current profile."""
    cfg = config.load()
    cfg.profile(name)
    cfg.current = name
    cfg.save()
    click.echo(f"profile {name} is current ({cfg.profiles[name].url})")


@profile.command("delete")
@click.argument("name")
@yes_option
def delete_command(name: str, yes: bool) -> None:
    """Forget a profile and its token (the token itself stays valid: revoke it in the API)."""
    cfg = config.load()
    cfg.profile(name)
    confirm(f"Forget profile {name}", yes)
    del cfg.profiles[name]
    if cfg.current == name:
        cfg.current = None
    cfg.save()
    click.echo(f"forgot profile {name}")
