"""Exceptions raised for bad packages; every one carries the problems found."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a package: where (a dotted path or member name) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PackageError(Exception):
    """Base of every problem with a package; `problems` lists each one found."""

    #: The HTTP status the API answers with for this kind of problem.
    status = 400

    def __init__(self, problems: list[Problem] | str, path: str = "") -> None:
        if isinstance(problems, str):
            problems = [Problem(path, problems)]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ArchiveError(PackageError):
    """The archive itself is unacceptable."""


class CorruptArchiveError(ArchiveError):
    """Not a readable zip or tar.gz, or trailing or concatenated data."""


class UnsafeMemberError(ArchiveError):
    """A member that could escape the package: traversal, absolute path, link, device."""


class DuplicateMemberError(ArchiveError):
    """Two members whose names are the same, up to case or Unicode normalisation."""


class ArchiveLimitError(ArchiveError):
    """A size, count or compression-ratio limit is exceeded."""

    status = 413


class ManifestError(PackageError):
    """`manifest.yaml` cannot be read: missing, not UTF-8, bad or unsafe YAML, too large."""


class ManifestValidationError(ManifestError):
    """The manifest parses but breaks the schema or the container policy."""


class RenderError(PackageError):
    """A template failed to render; names the service, the field and the variable."""

    def __init__(
        self, message: str, *, service: str = "", field: str = "", variable: str = ""
    ) -> None:
        self.service = service
        self.field = field
        self.variable = variable
        path = ".".join(p for p in (f"services.{service}" if service else "", field) if p)
        super().__init__(message, path=path)


class ImageError(PackageError):
    """A bundled image tarball is malformed, or does not hold the image asked for."""


class UnsafeImageError(ImageError):
    """A member of the tarball, or an entry of one of its layers, could escape its root."""


class ImageLimitError(ImageError):
    """Too many members, layers or entries, or JSON or a layer too large."""
