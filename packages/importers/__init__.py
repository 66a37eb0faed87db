"""Other formats made into catalog/v1 package directories: Compose files and Murano packages.

An importer reads its source, never runs anything of it, and returns an `Imported`: the manifest
as plain data, the members beside it (`files/...`, `logo.png`) and a report with one line per
conversion it made (a bind mount turned into a named volume, a key the catalog manages dropped).
What cannot become a package raises `ImportRefused`, one problem per source path, and nothing is
written. Like the rest of `packages/`, nothing here imports Flask or the database.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from packages.build import load_directory
from packages.errors import PackageError, Problem
from packages.package import LoadedPackage

# Parameter names that say they hold a secret (Compose variables, Murano properties).
_SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|PASS(?:$|_)|SECRET|TOKEN|(?:^|_)KEY(?:$|_)|PRIVATE")
# What opens a template, and a `{` at the end (a template may follow it: `{{{`).
_TEMPLATE_OPENERS = re.compile(r"\{\{|\{%|\{#|\{$")
# Names `params.NAME` would not reach: the methods of the mapping the parameters are.
_MAPPING_METHODS = frozenset(
    {"clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem", "setdefault"}
    | {"update", "values"}
)


class ImportRefused(PackageError):
    """The source cannot become a package; each problem names its path in the source."""


@dataclass
class Imported:
    """A package made from another format, not yet written."""

    manifest: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)  # member name -> content
    report: list[Problem] = field(default_factory=list)  # one per conversion made

    def note(self, path: str, message: str) -> None:
        self.report.append(Problem(path, message))


def is_secret_name(name: str) -> bool:
    """Whether a parameter's name says it holds a secret (DB_PASSWORD, apiToken, SECRET_KEY)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()
    return bool(_SECRET_WORDS.search(spaced))


def dns_label(text: str, fallback: str = "app") -> str:
    """`text` as a DNS label (lowercase letters, digits and -, at most 63 characters)."""
    label = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].strip("-")
    return label or fallback


def literal(text: str) -> str:
    """`text` as a template that renders to itself: `{{`, `{%` and `{#` are escaped."""
    return _TEMPLATE_OPENERS.sub(lambda m: f"{{{{ {m.group(0)!r} }}}}", text)


def param_ref(name: str) -> str:
    """The template expression of parameter `name`: `params.NAME`, or `params['NAME']` where
    the attribute would be a method of the mapping (items, keys, get...)."""
    if name in _MAPPING_METHODS or not name.isidentifier():
        return f"params[{name!r}]"
    return f"params.{name}"


def typed_parameter(default: str | None) -> dict[str, Any]:
    """A parameter schema typed from a default written as text ("8080" -> integer)."""
    if default is None:
        return {"type": "string"}
    if re.fullmatch(r"-?[0-9]{1,15}", default):
        return {"type": "integer", "default": int(default)}
    if default.lower() in ("true", "false"):
        return {"type": "boolean", "default": default.lower() == "true"}
    return {"type": "string", "default": default}


def manifest_text(manifest: dict[str, Any]) -> str:
    """The manifest as YAML, keys in the order they were built."""
    return yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=100)


def write_package(imported: Imported, directory: str | os.PathLike) -> LoadedPackage:
    """Write the package directory, checked as an upload would be; an existing non-empty
    directory is refused, never merged.

    Written and checked beside the target, then renamed into place: a package that does not
    validate (its problems raised) or a failure leaves nothing behind.
    """
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ImportRefused(f"{target} already exists and is not an empty directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=target.parent))
    try:
        (staging / "manifest.yaml").write_text(manifest_text(imported.manifest), encoding="utf-8")
        for name, content in imported.files.items():
            member = PurePosixPath(name)
            if member.is_absolute() or ".." in member.parts or name == "manifest.yaml":
                raise ImportRefused(f"{name}: not a member name a package may hold")
            path = staging.joinpath(*member.parts)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                raise ImportRefused(f"{name}: both a file and a directory of the package") from None
        loaded = load_directory(staging)
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return loaded
