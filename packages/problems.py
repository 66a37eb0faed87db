"""Problems of a manifest or a parameter schema, collected by path and worded for people.

Every problem is kept, never just the first, one per mistake; `sorted` orders them by path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from jsonschema.exceptions import ValidationError

from packages.errors import Problem
from packages.patterns import additional_keys

Path = tuple[str | int, ...]


class Problems:
    """Problems keyed by path; entries under a `covered` path are already explained."""

    def __init__(self, *, echo: bool = True) -> None:
        self.echo = echo  # whether messages may quote the offending value
        self.items: set[tuple[Path, str]] = set()
        self.covered: set[Path] = set()

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, path: Path, message: str) -> None:
        if not any(path[: len(c)] == c for c in self.covered):
            self.items.add((path, message))

    def refuse(self, path: Path, message: str, *, cover: Path | None = None) -> None:
        """A policy refusal: it hides what the schema would also say about `cover`."""
        self.add(path, message)
        self.covered.add(path if cover is None else cover)

    def add_error(self, error: ValidationError, prefix: Path) -> None:
        path = prefix + tuple(error.absolute_path)
        # A validator's errors carry these; the stubs also allow a hand-made error without them.
        value: Any = error.validator_value
        instance: Any = error.instance
        if error.validator == "required":
            for name in value:
                if isinstance(instance, dict) and name not in instance:
                    self.add((*path, name), "is required")
        elif error.validator == "additionalProperties" and value is False:
            for key in _extra_keys(instance, error.schema):
                self.add((*path, key), "unknown key")
        elif _is_property_name_error(error):
            self.add((*path, instance), error_message(error, self.echo))
        else:
            self.add(path, error_message(error, self.echo))

    def sorted(self) -> list[Problem]:
        ordered = sorted(self.items, key=lambda item: (path_key(item[0]), item[1]))
        return [Problem(format_path(path), message) for path, message in ordered]


def format_path(path: Iterable[str | int]) -> str:
    """`("services", "web", "ports", 0)` -> `services.web.ports[0]`; odd keys are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def path_key(path: Path) -> tuple:
    # Natural order: ports[2] before ports[10], and an object's problems stay together.
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in path)


def _extra_keys(instance: Any, schema: Any) -> list[str]:
    return additional_keys(instance, schema) if isinstance(instance, dict) else []


def _is_property_name_error(error: ValidationError) -> bool:
    # propertyNames checks a key without extending the path; find the keyword itself,
    # skipping names of properties (a parameter may well be called "propertyNames").
    after_name_map = False
    for part in error.schema_path:
        if after_name_map:
            after_name_map = False
        elif part == "propertyNames":
            return True
        else:
            after_name_map = part in ("properties", "patternProperties", "$defs")
    return False


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}
_MESSAGES = {
    "pattern": "must match the pattern {}",
    "format": "must be a valid {}",
    "minLength": "must be at least {} characters long",
    "maxLength": "must be at most {} characters long",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "exclusiveMinimum": "must be greater than {}",
    "exclusiveMaximum": "must be less than {}",
    "multipleOf": "must be a multiple of {}",
    "minItems": "must have at least {} items",
    "maxItems": "must have at most {} items",
    "uniqueItems": "must not contain duplicates",
    "minProperties": "must have at least {} keys",
    "maxProperties": "must have at most {} keys",
}


def error_message(error: ValidationError, echo: bool) -> str:
    """A readable message for one schema error; quotes the offending value only when `echo`."""
    kind = error.validator
    value: Any = error.validator_value  # set on every error a validator makes
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if kind in ("pattern", "format") and custom:
        return custom
    if kind == "type":
        words = [_TYPE_WORDS.get(t, t) for t in ([value] if isinstance(value, str) else value)]
        return "must be " + ", ".join(words[:-1]) + (" or " if len(words) > 1 else "") + words[-1]
    if kind == "enum":
        return "must be one of: " + ", ".join(json.dumps(v) for v in value)
    if kind == "const":
        return f"must be {json.dumps(value)}"
    if kind in ("minLength", "minItems") and value == 1:
        return "must not be empty"
    if kind in _MESSAGES:
        return _MESSAGES[kind].format(value)
    if kind is None:  # a `false` schema
        return "is not allowed"
    return error.message if echo else f"does not satisfy the schema's {kind!r} rule"


# A manifest is read before its types are checked: these walk only what has the right shape.


def list_items(value: Any) -> Iterator[tuple[int, Any]]:
    return enumerate(value) if isinstance(value, list) else iter(())


def mapping_entries(value: Any) -> Iterator[tuple[str, Any]]:
    return iter(value.items()) if isinstance(value, dict) else iter(())
