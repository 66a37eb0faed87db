"""`catalogctl package`: create, build and validate packages locally."""

from __future__ import annotations

from pathlib import Path

import click

from packages.build import build_package
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
