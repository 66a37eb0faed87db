"""`catalogctl package`: create, build and validate packages locally."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from catalogctl.client import Client
from packages.build import build_package, write_archive
from packages.package import load_directory, load_package
from packages.scaffold import init_package


@click.group()
def package() -> None:
    """Work with application packages (format catalog/v1)."""


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


@package.command("publish")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--public", is_flag=True, help="Visible to every tenant (admin only).")
@click.option("--category", "categories", multiple=True, help="A category; repeat for more.")
@click.option("--url", envvar="CATALOG_URL", help="API address (CATALOG_URL).")
@click.option("--token", envvar="CATALOG_TOKEN", help="API token (CATALOG_TOKEN).")
def publish_command(
    source: Path, public: bool, categories: tuple[str, ...], url: str | None, token: str | None
) -> None:
    """Upload an archive, or build a directory and upload it."""
    client = Client(url, token)
    visibility = "public" if public else "private"
    with tempfile.TemporaryFile() as built:
        if source.is_dir():
            load_directory(source)  # refuse locally, with every problem, before uploading
            write_archive(source, built)
            built.seek(0)
            version = client.upload(built, visibility=visibility, categories=list(categories))
        else:
            with source.open("rb") as archive:
                version = client.upload(archive, visibility=visibility, categories=list(categories))
    click.echo(f"published {version['package']} {version['version']} ({version['digest']})")
