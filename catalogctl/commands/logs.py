"""`catalogctl logs`: an app's container logs, a tail or followed."""

from __future__ import annotations

import click

from catalogctl.client import path
from catalogctl.context import api, api_options, env_argument


@click.command("logs")
@env_argument
@click.argument("app")
@click.option("--service", help="Only this service (needed by --follow when there are several).")
@click.option(
    "-n", "--tail", type=click.IntRange(0, 10_000), default=100, show_default=True,
    help="Lines from the end of each container's log.",
)  # fmt: skip
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@api_options
def logs(env: str, app: str, service: str | None, tail: int, follow: bool) -> None:
    """Logs of APP's containers in ENV (prefixed `service |` when there are several)."""
    params = {"service": service, "tail": tail}
    if follow:
        params["follow"] = "true"
    try:
        for line in api().raw_lines(path("environments", env, "apps", app, "logs"), params):
            click.echo(line)
    except KeyboardInterrupt:
        return
