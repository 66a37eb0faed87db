"""Parameter migrations: how a package version maps the parameters of earlier versions onto its
own schema (the manifest's `migrations`), applied when an app moves up to that version.

Pure: plain values in, plain values out; nothing of Flask or the database. The rules:

- Every migration whose `from` range matches the app's current version applies, in the order
  listed, each to what the previous one left; a move to the same or a lower version applies
  none. Ranges are read as npm reads them (`packages/versions.py`).
- In a migration each name has one role (checked at upload, `migration_checks.py`), so its
  renames, sets and drops do not depend on their order. `rename` moves a value as it is, a
  sealed secret (`{"$secret": ...}`) included; a name not set is skipped; a name already set
  is not overwritten: the rename is refused. `set` gives a value, replacing any; `drop`
  removes a name when it is set.
- The result is then checked against the new version's parameter schema, defaults applied as
  when an app is edited. Whatever it refuses is listed, never dropped: a parameter leaves only
  by a `drop` its package wrote.
- Lines and reasons name parameters and never show a value: any may be a secret.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from packages.errors import ManifestValidationError
from packages.manifest import validate_parameters
from packages.migration_checks import SEALED
from packages.problems import format_path
from packages.secrets import Location
from packages.versions import parse_range, parse_version

__all__ = ["SEALED", "Migrated", "matching", "migrate", "parameter_path", "sealed_locations"]


class Migrated(NamedTuple):
    """What `migrate` made of an app's parameters."""

    parameters: dict
    applied: list[str]  # one line per change made, e.g. "migrations[0]: rename a -> b"
    refused: list[tuple[str, str]]  # (parameter, why): the place under `parameters`, "" for all


def matching(
    migrations: Sequence[Mapping[str, Any]], from_version: str, to_version: str | None = None
) -> list[tuple[int, Mapping[str, Any]]]:
    """The migrations (with their index) whose `from` matches `from_version`, in the order
    listed; none when `to_version` is given and not above `from_version`."""
    try:
        current = parse_version(from_version)
        # Build metadata has no precedence: 1.0.0+b is no move from 1.0.0.
        if to_version is not None and (
            parse_version(to_version).truncate("prerelease") <= current.truncate("prerelease")
        ):
            return []
    except ValueError:
        return []
    found = []
    for index, migration in enumerate(migrations):
        try:
            if parse_range(migration.get("from")).match(current):
                found.append((index, migration))
        except ValueError:
            continue  # never stored: a manifest with such a range is refused at upload
    return found


def migrate(
    parameters: Mapping[str, Any],
    from_version: str,
    migrations: Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any] | None,
    *,
    to_version: str | None = None,
    reveal: Callable[[Any], Any] | None = None,
) -> Migrated:
    """`parameters` of an app at `from_version` made into parameters of the version declaring
    `migrations` and `schema` (its parameter schema), see the module's rules.

    `reveal` opens sealed secrets for the check only (the result keeps them sealed); without
    it, what holds a sealed value is not checked: its caller, which can open it, must.
    """
    values = copy.deepcopy(dict(parameters))
    applied: list[str] = []
    refused: list[tuple[str, str]] = []
    for index, migration in matching(migrations, from_version, to_version):
        where = f"migrations[{index}]"
        for old, new in (migration.get("rename") or {}).items():
            if old not in values:
                continue
            if new in values:
                refused.append((new, f"is set already: {where} cannot rename {old} onto it"))
                continue
            values[new] = values.pop(old)
            applied.append(f"{where}: rename {old} -> {new}")
        for name, value in (migration.get("set") or {}).items():
            values[name] = copy.deepcopy(value)
            applied.append(f"{where}: set {name}")
        for name in migration.get("drop") or ():
            if name in values:
                del values[name]
                applied.append(f"{where}: drop {name}")
    refused += _refusals(values, schema or {}, reveal)
    return Migrated(values, applied, refused)


def parameter_path(name: str) -> str:
    """The error path of a refused parameter: `parameters.<name>`, or `parameters`."""
    if not name:
        return "parameters"
    return f"parameters{name}" if name.startswith("[") else f"parameters.{name}"


def sealed_locations(values: Any, path: Location = ()) -> Iterator[Location]:
    """Where `values` holds a sealed secret (nothing is looked for inside one)."""
    if isinstance(values, dict) and set(values) == {SEALED} and isinstance(values[SEALED], str):
        yield path
    elif isinstance(values, dict):
        for key, item in values.items():
            yield from sealed_locations(item, (*path, key))
    elif isinstance(values, list):
        for i, item in enumerate(values):
            yield from sealed_locations(item, (*path, i))


def _refusals(
    values: dict, schema: Mapping[str, Any], reveal: Callable[[Any], Any] | None
) -> list[tuple[str, str]]:
    hidden = [] if reveal else [format_path(("parameters", *p)) for p in sealed_locations(values)]
    try:
        validate_parameters(dict(schema), reveal(values) if reveal else values)
    except ManifestValidationError as error:
        return [
            (_name(problem.path), problem.message)
            for problem in error.problems
            if not any(_under(problem.path, place) for place in hidden)
        ]
    return []


def _name(path: str) -> str:
    return path.removeprefix("parameters").removeprefix(".")


def _under(path: str, place: str) -> bool:
    return path == place or path.startswith((f"{place}.", f"{place}["))
