"""Parameter schemas of a manifest: JSON Schema 2020-12 objects with local references only,
patterns RE2 can match, and defaults that fit their own properties."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from packages.patterns import ParameterValidator, pattern_problem
from packages.problems import Path, Problems, error_message, format_path, mapping_entries, path_key
from packages.secrets import schema_problems as secret_schema_problems
from packages.secrets import subschemas

_PARAMETERS_URI = "urn:container-catalog:parameters"
_META = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)


def check_parameter_schema(schema: dict, path: Path, found: Problems) -> None:
    """A JSON Schema (2020-12) of an object, local references only, defaults that fit."""
    text = json.dumps(schema, separators=(",", ":"))
    if len(text) > CACHED_SCHEMA_CHARS:
        problems = _schema_problems(schema, found.echo)
    else:
        problems = _cached_schema_problems(text, found.echo)
    for where, message in problems:
        found.add((*path, *where), message)


def _schema_problems(schema: dict, echo: bool) -> tuple[tuple[Path, str], ...]:
    """The problems of one parameter schema, with paths inside the schema."""
    found = Problems(echo=echo)
    errors = list(_META.iter_errors(schema))
    for error in errors:
        found.add_error(error, ())
    broken = [tuple(error.absolute_path) for error in errors]
    if schema.get("type") != "object" and ("type",) not in broken:
        found.add(("type",), 'must be "object": parameters are a mapping of names to values')
    for where, message in (*secret_schema_problems(schema), *pattern_problems(schema)):
        if where not in broken:  # the meta-schema said what is wrong there already
            found.add(where, message)
    if _check_references(schema, (), found):
        _check_properties(schema, (), ParameterValidator(schema), broken, found)
    return tuple(found.items)


def pattern_problems(schema: dict) -> Iterator[tuple[Path, str]]:
    """Patterns RE2 cannot match (patterns.py), and the one keyword that would match them
    with Python's backtracking `re`: unevaluatedProperties beside patternProperties."""
    has_pattern_properties = False
    for path, sub in subschemas(schema):
        if isinstance(sub.get("pattern"), str):
            problem = pattern_problem(sub["pattern"])
            if problem:
                yield (*path, "pattern"), f"{_RE2} ({problem})"
        for key in sub.get("patternProperties") or {}:
            has_pattern_properties = True
            problem = pattern_problem(key)
            if problem:
                yield (*path, "patternProperties", key), f"{_RE2} ({problem})"
    if has_pattern_properties:
        for path, sub in subschemas(schema):
            if "unevaluatedProperties" in sub:
                yield (
                    (*path, "unevaluatedProperties"),
                    ("cannot be used with patternProperties; use additionalProperties"),
                )


_RE2 = "is not a pattern RE2 can match (no backreferences or lookaround)"


# Checking a schema against the 2020-12 meta-schema is the dearest part of reading a manifest
# (most of an upload's validation), and a package's versions mostly keep their parameters:
# the problems of recent schemas are kept, by their JSON text. Larger schemas are checked
# every time, so the cache stays small whatever publishers send.
CACHED_SCHEMA_CHARS = 16 * 1024


@functools.lru_cache(maxsize=256)
def _cached_schema_problems(text: str, echo: bool) -> tuple[tuple[Path, str], ...]:
    return _schema_problems(json.loads(text), echo)


def _check_references(schema: dict, path: Path, found: Problems) -> bool:
    """Whether every $ref resolves inside the schema: nothing may be fetched from elsewhere."""
    resource = DRAFT202012.create_resource(schema)
    resolver = Registry().with_resource(_PARAMETERS_URI, resource).resolver(_PARAMETERS_URI)
    resolved = True
    for ref_path, ref in _references(schema, path):
        if not ref.startswith("#"):
            found.add(ref_path, "only references inside the schema (#...) are allowed")
            resolved = False
            continue
        try:
            resolver.lookup(ref)
        except Unresolvable:
            found.add(ref_path, f"{ref} does not point to anything in the schema")
            resolved = False
    return resolved


def _references(node: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield (*path, key), value
            else:
                yield from _references(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _references(value, (*path, i))


def _check_properties(
    schema: dict,
    path: Path,
    validator: ParameterValidator,
    broken: list[Path],
    found: Problems,
) -> None:
    for name, sub in mapping_entries(schema.get("properties")):
        if not isinstance(sub, dict):
            continue
        sub_path = (*path, "properties", name)
        # A default is checked against its property only when the property itself is sound.
        sound = not any(b[: len(sub_path)] == sub_path for b in broken)
        if "default" in sub and sound:
            _check_default(sub_path, sub, validator, found)
        _check_properties(sub, sub_path, validator, broken, found)


def _check_default(
    path: Path, schema: dict, validator: ParameterValidator, found: Problems
) -> None:
    try:
        # evolve keeps the root's resolver, so local $refs inside the property still work
        errors = list(validator.evolve(schema=schema).iter_errors(schema["default"]))
    except (Unresolvable, re.error):
        found.add(path, "cannot be checked against its own schema")
        return
    if errors:
        first = min(errors, key=lambda e: path_key(tuple(e.absolute_path)))
        where = format_path(first.absolute_path)
        detail = error_message(first, echo=schema.get("x-secret") is not True)
        found.add(
            (*path, "default"), f"does not fit the property: {where}{': ' if where else ''}{detail}"
        )
