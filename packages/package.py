"""Loading a whole package: archive safety, manifest, and the cross-checks between them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import BinaryIO

from packages.archive import PackageArchive, open_archive
from packages.bounds import files_bytes_problem
from packages.errors import ManifestError, ManifestValidationError, PackageError, Problem
from packages.images import check_bundled_images
from packages.limits import DEFAULT_LIMITS, Limits
from packages.manifest import Manifest, parse_manifest
from packages.problems import format_path
from packages.template_check import check_templates

MANIFEST = "manifest.yaml"
LOGO = "logo.png"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_LOGO_BYTES = 512 * 1024


@dataclass(frozen=True)
class LoadedPackage:
    """A package that passed every check: its manifest and what the archive holds."""

    manifest: Manifest
    kind: str  # "zip" or "tar.gz"
    names: tuple[str, ...]
    logo: bytes | None = field(default=None, repr=False)  # logo.png, checked to be a PNG


def _logo(archive: PackageArchive) -> bytes | None:
    if LOGO not in archive.names:
        return None
    if archive.size_of(LOGO) > MAX_LOGO_BYTES:
        raise PackageError(f"the logo is larger than {MAX_LOGO_BYTES // 1024} KiB", path=LOGO)
    logo = archive.read(LOGO)
    if not logo.startswith(PNG_MAGIC):
        raise PackageError("the logo is not a PNG image", path=LOGO)
    return logo


def _check_files_bytes(manifest: Manifest, archive: PackageArchive, limits: Limits) -> None:
    problem = files_bytes_problem(manifest.services, archive.size_of, limits)
    if problem is not None:
        path, message = problem
        raise ManifestValidationError([Problem(format_path(path), message)])


def load_package(
    source: str | os.PathLike | BinaryIO, limits: Limits = DEFAULT_LIMITS
) -> LoadedPackage:
    """Validate an archive (a path or a seekable binary stream) and return what it holds."""
    with open_archive(source, limits) as archive:
        if MANIFEST not in archive.names:
            raise ManifestError(f"{MANIFEST} is missing at the archive's root", path=MANIFEST)
        manifest = parse_manifest(archive.read(MANIFEST), members=archive.names, limits=limits)
        check_templates(manifest.raw, archive)
        logo = _logo(archive)
        _check_files_bytes(manifest, archive, limits)
        check_bundled_images(archive, manifest.services, limits)
        return LoadedPackage(manifest, archive.kind, tuple(archive.names), logo)
