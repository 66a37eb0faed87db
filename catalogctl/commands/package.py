"""`catalogctl package`: create, build and validate packages here, and publish them.

Finding, changing, yanking, downloading and deleting them in the catalog: package_catalog.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import click

from catalogctl.client import ApiError, Client, path
from catalogctl.commands.package_catalog import COMMANDS as CATALOG_COMMANDS
from catalogctl.commands.package_import import import_command
from catalogctl.context import api, api_options, output_format
from catalogctl.output import dump
from packages.build import build_package, load_directory, write_archive
from packages.package import LoadedPackage, load_package
from packages.scaffold import init_package


@click.group()
def package() -> None:
    """Application packages (format catalog/v1): local tools and the catalog's copies."""


# -- local --------------------------------------------------------------------------------------


@package.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Package name (reverse-DNS); default org.example.<directory>.")
def init_command(directory: Path, name: str | None) -> None:
    """Create a package skeleton in DIRECTORY."""
    root = init_package(directory, name)
    click.echo(f"created {root / 'manifest.yaml'}")
    click.echo(f"next: catalogctl package build {root} -o {root.name}.tar.gz")


@package.command("build")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Archive to write (tar.gz).",
)
def build_command(directory: Path, output: Path) -> None:
    """Build DIRECTORY into a validated, reproducible archive."""
    digest = build_package(directory, output)
    click.echo(f"{output}: {digest} ({output.stat().st_size} bytes)")


@package.command("validate")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
def validate_command(source: Path) -> None:
    """Check an archive or a package directory; each problem is printed on its own line."""
    loaded = load_directory(source) if source.is_dir() else load_package(source)
    click.echo(f"{source}: valid ({loaded.manifest.name} {loaded.manifest.version})")


# -- in the catalog ---------------------------------------------------------------------------


def _published(client: Client, loaded: LoadedPackage) -> bool:
    manifest = loaded.manifest
    try:
        client.json("GET", path("packages", manifest.name, "versions", manifest.version))
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def publish_sources(
    client: Client,
    sources: Iterable[Path],
    *,
    visibility: str = "private",
    categories: Iterable[str] = (),
    skip_existing: bool = False,
) -> Iterator[dict]:
    """Publish each source (an archive, or a directory built here); the API's answer for each,
    or `{package, version, skipped: True}` for a version the catalog has already."""
    for source in sources:
        with tempfile.TemporaryFile() as built:
            archive: BinaryIO
            if source.is_dir():
                write_archive(source, built)  # built once: checked here, then sent
                archive = built
            else:
                archive = source.open("rb")
            with archive:
                loaded = load_package(archive)  # every problem, before anything is sent
                archive.seek(0)
                if skip_existing and _published(client, loaded):
                    yield {"package": loaded.manifest.name, "version": loaded.manifest.version,
                           "skipped": True}  # fmt: skip
                    continue
                yield client.upload(archive, visibility=visibility, categories=list(categories))


def published_line(result: dict) -> str:
    if result.get("skipped"):
        return f"{result['package']} {result['version']} is published already (skipped)"
    return f"published {result['package']} {result['version']} ({result['digest']})"


@package.command("publish")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--public", is_flag=True, help="Visible to every tenant (admin only).")
@click.option("--category", "categories", multiple=True, help="A category; repeat for more.")
@click.option(
    "--skip-existing", is_flag=True, help="A version the catalog has already is not an error."
)
@api_options
def publish_command(
    sources: tuple[Path, ...], public: bool, categories: tuple[str, ...], skip_existing: bool
) -> None:
    """Upload archives, or build package directories and upload them.

    Each SOURCE is checked here first, with every problem listed, before anything is sent.
    JSON/YAML output: the published version, or a list of them for several sources.
    """
    results = []
    for result in publish_sources(
        api(),
        sources,
        visibility="public" if public else "private",
        categories=categories,
        skip_existing=skip_existing,
    ):
        results.append(result)
        if output_format() == "table":
            click.echo(published_line(result))
    if output_format() != "table":
        dump(results[0] if len(results) == 1 else results)


for _command in CATALOG_COMMANDS:
    package.add_command(_command)
package.add_command(import_command)
