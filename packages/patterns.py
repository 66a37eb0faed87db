"""Regular expressions of parameter schemas (`pattern`, `patternProperties`), matched by RE2.

A publisher writes these patterns and deployers supply the strings they run on, so they are
matched in time linear in the string: RE2 (`google-re2`) has no backtracking, where Python's
`re` takes exponential time on a pattern like `^(a+)+$`. The cost is RE2's syntax: no
backreferences and no lookaround; a pattern RE2 cannot compile is refused at upload
(`pattern_problem`). `ParameterValidator` is the JSON Schema 2020-12 validator with every
keyword that matches a pattern (`pattern`, `patternProperties`, and `additionalProperties`,
which skips the keys those patterns match) done by RE2.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported to the publisher, not logged


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> tuple[Any, str | None]:
    """(the compiled pattern, None) or (None, why RE2 refuses it)."""
    try:
        return re2.compile(pattern, options=_OPTIONS), None
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        return None, reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be used (RE2 does not compile it), or None."""
    return _compiled(pattern)[1]


def pattern_search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches somewhere in `text` (JSON Schema patterns are not anchored);
    a pattern that does not compile matches nothing."""
    compiled = _compiled(pattern)[0]
    return compiled is not None and compiled.search(text) is not None


# -- the validator --------------------------------------------------------------------------


def _pattern(validator, pattern: str, instance: Any, schema: dict) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not pattern_search(pattern, instance):
        yield ValidationError(f"does not match {pattern!r}")


def _pattern_properties(validator, patterns: dict, instance: Any, schema: dict):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if pattern_search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def additional_keys(instance: dict, schema: dict) -> list[str]:
    """The keys of `instance` that neither `properties` nor `patternProperties` cover."""
    known = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return [
        key
        for key in instance
        if key not in known and not any(pattern_search(p, key) for p in patterns)
    ]


def _additional_properties(validator, additional: Any, instance: Any, schema: dict):
    if not validator.is_type(instance, "object"):
        return
    extras = additional_keys(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        yield ValidationError(f"unknown keys: {', '.join(sorted(extras))}")


ParameterValidator = validators.extend(
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)
