"""Entry point of `catalogctl`: the command groups and the one place errors are printed."""

from __future__ import annotations

import sys

import click

from catalogctl.commands.action import action
from catalogctl.commands.admin import admin
from catalogctl.commands.app import app
from catalogctl.commands.audit import audit
from catalogctl.commands.bundle import bundle
from catalogctl.commands.category import category
from catalogctl.commands.completion import completion
from catalogctl.commands.deploy import deploy, deployment
from catalogctl.commands.env import env
from catalogctl.commands.events import events
from catalogctl.commands.logs import logs
from catalogctl.commands.package import package
from catalogctl.commands.profile import login, profile
from catalogctl.commands.registry import registry
from catalogctl.commands.template import template
from catalogctl.commands.up import up
from catalogctl.commands.webhook import webhook
from catalogctl.context import api_options
from catalogctl.server import beat, db, serve, spec, tracker, worker
from packages.errors import PackageError


class Sections(click.Group):
    """Lists commands in the order they were added (a user's order), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=Sections, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="container-catalog", prog_name="catalogctl")
@api_options
def cli() -> None:
    """Command-line client of the container application catalog.

    \b
    Start here:   catalogctl up                  (or `make run` in a clone)
    Then:         catalogctl package list
                  catalogctl env create demo
                  catalogctl app add demo web --package org.example.hello-web
                  catalogctl deploy demo
    Shell completion: eval "$(_CATALOGCTL_COMPLETE=bash_source catalogctl)"
                  or `catalogctl completion bash|zsh|fish`.
    """


for command in (
    package, bundle, category, env, app, template, deploy, deployment, events, logs, action,
    audit, webhook, registry, admin, login, profile, up, serve, worker, beat, tracker, db, spec,
    completion,
):  # fmt: skip
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; failures print one clear line per problem and no traceback."""
    try:
        cli.main(args=argv, prog_name="catalogctl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except PackageError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        return 1
    except OSError as exc:
        click.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        return 1
    except Exception as exc:
        if not _database_unavailable(exc):
            raise
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        click.echo(f"Error: the database is not available ({reason}); "
                   "check CATALOG_DATABASE_URL (and CATALOG_HOME)", err=True)  # fmt: skip
        return 1
    return 0


def _database_unavailable(exc: Exception) -> bool:
    """A service command (db upgrade, admin bootstrap) could not reach its database."""
    errors = sys.modules.get("sqlalchemy.exc")  # loaded only by the commands that use it
    return errors is not None and isinstance(exc, errors.OperationalError)


if __name__ == "__main__":
    sys.exit(main())
