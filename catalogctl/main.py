"""Entry point of `catalogctl`: the command groups and the one place errors are printed."""

from __future__ import annotations

import sys

import click

from catalogctl.package import package
from catalogctl.server import admin, beat, db, serve, spec, tracker, worker
from packages.errors import PackageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="container-catalog", prog_name="catalogctl")
def cli() -> None:
    """Command-line client of the container application catalog."""


for command in (package, serve, worker, beat, tracker, db, admin, spec):
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
