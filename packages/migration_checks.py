"""Checks of a manifest's `migrations` beyond its schema: each `from` a range, each name one
role in its migration, renames and sets onto parameters this version declares, set values its
parameter schema accepts. How migrations are applied is `packages/migrations.py`'s."""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable

from packages.patterns import ParameterValidator, pattern_search
from packages.problems import Path, Problems, list_items, mapping_entries
from packages.versions import is_range

# The shape of a sealed secret (catalog.secretbox.SEALED): a migration may not forge one.
SEALED = "$secret"


def check_migrations(doc: dict, found: Problems) -> None:
    """Every problem of `doc["migrations"]`, against the manifest's own parameter schema.

    The checks that read the parameter schema are skipped when it has problems of its own
    (they are reported under `parameters`).
    """
    schema: Any = doc.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(schema, dict) or any(path[:1] == ("parameters",) for path, _ in found.items):
        schema = None
    validator = None
    if schema is not None and doc.get("migrations"):
        validator = ParameterValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for i, migration in list_items(doc.get("migrations")):
        if isinstance(migration, dict):
            _check_migration(("migrations", i), migration, schema, validator, found)


def _check_migration(
    base: Path,
    migration: dict,
    schema: dict | None,
    validator: ParameterValidator | None,
    found: Problems,
) -> None:
    source = migration.get("from")
    if isinstance(source, str) and not is_range(source):
        found.add((*base, "from"), f"{source!r} is not a version range like '>=1.0.0 <2.0.0'")
    rename = dict(mapping_entries(migration.get("rename")))
    values = dict(mapping_entries(migration.get("set")))
    drop = [name for _, name in list_items(migration.get("drop")) if isinstance(name, str)]
    if not (rename or values or drop):
        found.add(base, "does nothing: give rename, set or drop")
    _check_roles(base, rename, values, drop, found)
    if schema is None or validator is None:
        return
    for old, new in rename.items():
        if isinstance(new, str) and not _declares(schema, new):
            found.add(
                (*base, "rename", old), f"renames onto {new}, not a parameter of this version"
            )
    for name, value in values.items():
        if not _declares(schema, name):
            found.add((*base, "set", name), "is not a parameter of this version")
        elif _holds_sealed(value):
            found.add(
                (*base, "set", name),
                f'a mapping whose only key is "{SEALED}" is reserved for stored secrets',
            )
        else:
            _check_value((*base, "set"), name, value, validator, found)


def _check_roles(base: Path, rename: dict, values: dict, drop: list[str], found: Problems) -> None:
    """One migration gives each name one role: renamed from, renamed onto, set or dropped, so
    the order of its renames, sets and drops does not matter."""
    onto: dict[str, str] = {}
    for old, new in rename.items():
        if not isinstance(new, str):
            continue  # the schema says so
        if new == old:
            clash = "which is the same name"
        elif new in drop:
            clash = "which this migration also drops"
        elif new in values:
            clash = "which this migration also sets"
        elif new in rename:
            clash = "which this migration also renames; rename it in a migration of its own"
        elif new in onto:
            clash = f"as rename.{onto[new]} does"
        else:
            clash = ""
        if clash:
            found.add((*base, "rename", old), f"renames onto {new}, {clash}")
        onto.setdefault(new, old)
    for name in values:
        if name in drop:
            found.add((*base, "set", name), "is also dropped by this migration")
        elif name in rename:
            found.add((*base, "set", name), "is also renamed by this migration")
    for i, name in enumerate(drop):
        if name in rename:
            found.add((*base, "drop", i), f"{name} is renamed by this migration: rename or drop it")


def _declares(schema: dict, name: str) -> bool:
    """Whether the schema names `name`: under `properties`, matched by `patternProperties`,
    or any name when `additionalProperties` is a schema of its own."""
    properties = schema.get("properties")
    if isinstance(properties, dict) and name in properties:
        return True
    patterns = schema.get("patternProperties")
    if isinstance(patterns, dict) and any(pattern_search(p, name) for p in patterns):
        return True
    return isinstance(schema.get("additionalProperties"), dict)


def _holds_sealed(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {SEALED} or any(_holds_sealed(v) for v in value.values())
    return isinstance(value, list) and any(_holds_sealed(v) for v in value)


def _check_value(
    base: Path, name: str, value: Any, validator: ParameterValidator, found: Problems
) -> None:
    """The problems of `{name: value}` under the schema that concern `name` (not the other
    parameters a migration leaves as they are). Values are not quoted: they may be secrets."""
    own = Problems(echo=False)
    try:
        for error in validator.iter_errors({name: value}):
            own.add_error(error, ())
    except (Unresolvable, re.error):
        return  # a schema that cannot be used is reported under `parameters`
    for path, message in own.items:
        if path[:1] == (name,):
            found.add((*base, *path), message)
