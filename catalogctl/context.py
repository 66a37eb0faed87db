"""What every API command shares: where the catalog is, which token, the output format, and
the confirmation of destructive commands.

`--url`, `--token`, `--profile` and `--output` work on the root command and on every API
command alike (`catalogctl -o json env list` or `catalogctl env list -o json`); the one
closest to the command wins. Where the address and token come from, first match:

1. `--url` / `--token`;
2. the profile named by `--profile` (or `CATALOG_PROFILE`);
3. `CATALOG_URL` / `CATALOG_TOKEN`;
4. the config file's current profile (`catalogctl login` saves one and makes it current);
5. http://127.0.0.1:8000 and no token.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from catalogctl import config
from catalogctl.client import DEFAULT_URL, Client

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "json", "yaml")


@dataclass
class Options:
    url: str | None = None
    token: str | None = None
    profile: str | None = None
    output: str | None = None


def _remember(field: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            setattr(ctx.ensure_object(Options), field, value)
        return value

    return callback


CONNECTION_OPTIONS = (
    click.option(
        "--url",
        metavar="URL",
        expose_value=False,
        callback=_remember("url"),
        help=f"API address (default: the profile's, CATALOG_URL, {DEFAULT_URL}).",
    ),
    click.option(
        "--token",
        metavar="TOKEN",
        expose_value=False,
        callback=_remember("token"),
        help="API token (default: the profile's, or CATALOG_TOKEN).",
    ),
    click.option(
        "--profile",
        metavar="NAME",
        expose_value=False,
        callback=_remember("profile"),
        help="A profile saved by `catalogctl login` (default: CATALOG_PROFILE, the current one).",
    ),
    click.option(
        "-o",
        "--output",
        type=click.Choice(FORMATS),
        expose_value=False,
        callback=_remember("output"),
        help="Output format (default: table).",
    ),
)


def api_options(f: F) -> F:
    """The connection and output options, on a group or an API command."""
    for option in reversed(CONNECTION_OPTIONS):
        f = option(f)
    return f


def connection_options(f: F) -> F:
    """The connection options alone: for a command whose -o names a file it writes."""
    for option in reversed(CONNECTION_OPTIONS[:3]):
        f = option(f)
    return f


def options() -> Options:
    return click.get_current_context().ensure_object(Options)


def output_format() -> str:
    return options().output or "table"


def resolve() -> tuple[str, str | None, str | None]:
    """(url, token, profile name) from options, profile, environment, config, in that order.

    A profile's token is only ever sent to that profile's address.
    """
    opts = options()
    env_url, env_token = os.environ.get("CATALOG_URL"), os.environ.get("CATALOG_TOKEN")
    cfg = config.load()
    name = opts.profile or os.environ.get("CATALOG_PROFILE")
    if name:
        profile = cfg.profile(name)
        url, token = profile.url, profile.token
    elif env_url:
        url, token = env_url, env_token
    elif cfg.current in cfg.profiles:
        name = cfg.current
        profile = cfg.profiles[name]
        url, token = profile.url, env_token or profile.token
    else:
        url, token = DEFAULT_URL, env_token
    if opts.url and opts.url.rstrip("/") != url.rstrip("/"):
        url, token, name = opts.url, env_token, None
    return url, opts.token or token, name


def api() -> Client:
    """A client of the catalog this command talks to."""
    url, token, _ = resolve()
    return Client(url, token)


yes_option = click.option(
    "-y", "--yes", is_flag=True, help="Do not ask for confirmation (needed without a terminal)."
)


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive change; without a terminal, refuse unless --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.ClickException(f"{question}? Refusing without a terminal to ask; pass --yes")
    click.confirm(f"{question}?", abort=True, err=True)


def _names(ctx: click.Context, route: str, incomplete: str) -> list[str]:
    """Names from a list route for shell completion; nothing when the API does not answer."""
    try:
        with ctx:  # completion runs without a current context; resolve() needs one
            url, token, _ = resolve()
        items = Client(url, token, timeout=2).json("GET", route, params={"limit": 200})["items"]
    except Exception:  # completion must never fail loudly
        return []
    return [i["name"] for i in items if i["name"].startswith(incomplete)]


def complete_env(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    return _names(ctx, "/environments", incomplete)


def complete_template(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    return _names(ctx, "/templates", incomplete)


def complete_package(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    return _names(ctx, "/packages", incomplete)


def env_argument(f: F) -> F:
    """ENV: an environment's name (completed from the API)."""
    return click.argument("env", shell_complete=complete_env)(f)
