"""`catalogctl package import`: a Compose file or a Murano package made into a package directory."""

from __future__ import annotations

from pathlib import Path

import click

from catalogctl.context import api, connection_options
from packages.importers import Imported, write_package

FORMATS = ("compose", "murano")


def detect_format(source: Path) -> str:
    """`murano` for a Murano package (a zip or a Murano manifest's directory), else compose."""
    if source.is_file():
        return "murano" if source.suffix.lower() == ".zip" else "compose"
    manifest = source / "manifest.yaml"
    if manifest.is_file() and b"FullName" in manifest.read_bytes()[:65536]:
        return "murano"
    return "compose"


@click.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--from",
    "source_format",
    type=click.Choice(FORMATS),
    help="The source's format; default: a Murano package if it looks like one.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Package directory to write (new or empty); default ./<last part of the name>.",
)
@click.option("--name", help="Package name (reverse-DNS); default from the source.")
@click.option("--version", "version", help="Package version; default the source's, or 1.0.0.")
@click.option(
    "--drop-unsafe",
    is_flag=True,
    help="Drop what the container policy forbids, with a line each, instead of refusing.",
)
@click.option(
    "--compose-profile",
    "profiles",
    multiple=True,
    help="Compose: also import the services of this profile; repeat for more.",
)
@click.option(
    "--publish",
    "publish",
    is_flag=True,
    help="Publish the package at once.",
)
@connection_options
def import_command(
    source: Path,
    source_format: str | None,
    output: Path | None,
    name: str | None,
    version: str | None,
    drop_unsafe: bool,
    profiles: tuple[str, ...],
    publish: bool,
) -> None:
    """Write a catalog/v1 package directory made from SOURCE, a Compose file or directory, or a
    Murano package (a directory or its zip).

    Prints one line per conversion made; a source that cannot become a package prints one line
    per problem, naming its path in the source, and writes nothing.
    """
    kind = source_format or detect_format(source)
    imported: Imported
    if kind == "murano":
        if drop_unsafe or profiles:
            raise click.UsageError(
                "--drop-unsafe and --compose-profile apply to Compose files only"
            )
        from packages.importers.murano import import_murano  # read when used: startup stays fast

        imported = import_murano(source, name=name, version=version)
    else:
        from packages.importers.compose import import_compose

        imported = import_compose(
            source, name=name, version=version, drop_unsafe=drop_unsafe, profiles=profiles
        )
    package_name = imported.manifest["name"]
    target = output or Path(package_name.rsplit(".", 1)[-1])
    loaded = write_package(imported, target)
    for line in imported.report:
        click.echo(f"  {line}")
    click.echo(
        f"{target}: valid ({loaded.manifest.name} {loaded.manifest.version}), "
        f"{len(imported.report)} conversion(s) from {kind}"
    )
    if publish:
        from catalogctl.commands.package import publish_sources, published_line  # its group

        for result in publish_sources(api(), [target]):
            click.echo(published_line(result))
    elif not output:
        click.echo(f"next: catalogctl package publish {target}")
