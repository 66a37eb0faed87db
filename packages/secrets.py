"""Where a parameter schema places `x-secret`: its subschemas, and the places of values it hides.

A value is secret when any subschema that applies to its place says `x-secret: true`, wherever
the schema puts it: `properties`, `patternProperties`, `additionalProperties`, `items`,
`prefixItems`, `contains`, behind a local `$ref` (into `$defs` or anywhere else in the schema),
or in a branch of `allOf`/`anyOf`/`oneOf`/`if`/`then`/`else`/`dependentSchemas`/`not`. A
combinator's branch counts whether or not the value matches it: masking a value that a branch
calls secret costs nothing, showing one would leak it. So the places found depend only on the
keys and positions of the values, never on what the values are.

What cannot be masked is refused when the schema is uploaded (`schema_problems`): `x-secret`
under `propertyNames` (keys are always shown), references that are not JSON pointers into the
schema itself, and `$id`/`$anchor`/`$dynamicRef`, which would move what a `$ref` points to.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote

from packages.patterns import pattern_search

# A place in the values: keys of mappings and indexes of lists.
Location = tuple[str | int, ...]
SchemaPath = tuple[str | int, ...]

# Keywords whose value is one subschema, a list of them, or a mapping of names to them.
_ONE = (
    "additionalProperties", "unevaluatedProperties", "items", "unevaluatedItems", "contains",
    "propertyNames", "if", "then", "else", "not", "contentSchema",
)  # fmt: skip
_LIST = ("prefixItems", "allOf", "anyOf", "oneOf")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
# Subschemas that apply to the same value as the schema holding them.
_SAME_PLACE_ONE = ("if", "then", "else", "not")
_SAME_PLACE_LIST = ("allOf", "anyOf", "oneOf")
_MOVING = ("$anchor", "$dynamicAnchor", "$dynamicRef", "$recursiveRef", "$recursiveAnchor")


# -- the subschemas of a schema ----------------------------------------------------------------


def subschemas(schema: Any, path: SchemaPath = ()) -> Iterator[tuple[SchemaPath, dict]]:
    """Every subschema (a mapping) with its path, the schema itself first.

    Only schema positions are visited: a parameter called `x-secret` or `$ref` under
    `properties` is a name, not a keyword.
    """
    if not isinstance(schema, dict):
        return
    yield path, schema
    for key in _ONE:
        yield from subschemas(schema.get(key), (*path, key))
    for key in _LIST:
        branches = schema.get(key)
        if isinstance(branches, list):
            for i, branch in enumerate(branches):
                yield from subschemas(branch, (*path, key, i))
    for key in _MAP:
        members = schema.get(key)
        if isinstance(members, dict):
            for name, member in members.items():
                yield from subschemas(member, (*path, key, name))


def schema_problems(schema: Any) -> Iterator[tuple[SchemaPath, str]]:
    """What makes the secrets of a parameter schema impossible to find, by path in the schema."""
    for path, sub in subschemas(schema):
        if "x-secret" in sub and not isinstance(sub["x-secret"], bool):
            yield (*path, "x-secret"), "must be true or false"
        if sub.get("x-secret") is True and "propertyNames" in path:
            yield (*path, "x-secret"), "property names are always shown; they cannot be secret"
        if "$id" in sub and path:
            yield (*path, "$id"), "only the schema itself may have an $id"
        for key in _MOVING:
            if key in sub:
                yield (*path, key), "is not supported in parameter schemas: use $ref and $defs"
        ref = sub.get("$ref")
        if isinstance(ref, str) and ref.startswith("#") and ref != "#" and ref[1] != "/":
            yield (*path, "$ref"), "must be a JSON pointer (#/$defs/name), not an anchor"


# -- the places of secret values --------------------------------------------------------------


def secret_locations(values: Any, schemas: Iterable[Any]) -> frozenset[Location]:
    """Places in `values` that any of `schemas` (whole parameter schemas) calls secret.

    The outermost place wins: nothing is reported inside a secret value.
    """
    found: set[Location] = set()
    roots = [(root, root) for root in schemas if isinstance(root, dict)]
    _walk(values, roots, (), found)
    return frozenset(found)


# A subschema together with the whole schema its local references point into.
_Scoped = tuple[dict, dict]
# The same before the subschema is known to be one (a mapping): a keyword's value, maybe None.
_Candidate = tuple[dict, Any]


def _walk(value: Any, scoped: list[_Candidate], path: Location, found: set[Location]) -> None:
    applying = _same_place(scoped)
    if not applying:
        return
    if any(sub.get("x-secret") is True for _, sub in applying):
        found.add(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, [c for s in applying for c in _property(s, key)], (*path, key), found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, [c for s in applying for c in _item(s, i)], (*path, i), found)


def _same_place(scoped: list[_Candidate]) -> list[_Scoped]:
    """The subschemas given and all that apply to the same value: references followed,
    branches of combinators and conditions, dependent schemas. Each is taken once, so a
    reference cycle ends."""
    seen: set[int] = set()
    result: list[_Scoped] = []
    pending = list(scoped)
    while pending:
        root, sub = pending.pop()
        if not isinstance(sub, dict) or id(sub) in seen:
            continue
        seen.add(id(sub))
        result.append((root, sub))
        ref = sub.get("$ref")
        if isinstance(ref, str):
            pending.append((root, _pointer(root, ref)))
        pending += [(root, sub.get(key)) for key in _SAME_PLACE_ONE]
        for key in _SAME_PLACE_LIST:
            branches = sub.get(key)
            pending += [(root, b) for b in branches] if isinstance(branches, list) else []
        dependent = sub.get("dependentSchemas")
        pending += [(root, d) for d in dependent.values()] if isinstance(dependent, dict) else []
    return result


def _pointer(root: dict, ref: str) -> Any:
    """What a local reference (`#`, `#/$defs/name`) points to in `root`, or None."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for token in unquote(ref[2:]).split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(token)
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def _property(scoped: _Scoped, key: str) -> Iterator[_Candidate]:
    """The subschemas of `scoped` (an object's schema) that apply to its member `key`."""
    root, sub = scoped
    properties = sub.get("properties")
    named = False
    if isinstance(properties, dict) and key in properties:
        named = True
        yield root, properties[key]
    patterns = sub.get("patternProperties")
    matched = False
    for pattern, schema in patterns.items() if isinstance(patterns, dict) else ():
        if pattern_search(pattern, key):
            matched = True
            yield root, schema
    if not named and not matched:
        for keyword in ("additionalProperties", "unevaluatedProperties"):
            yield root, sub.get(keyword)


def _item(scoped: _Scoped, index: int) -> Iterator[_Candidate]:
    """The subschemas of `scoped` (a list's schema) that apply to its item `index`."""
    root, sub = scoped
    prefix = sub.get("prefixItems")
    prefix = prefix if isinstance(prefix, list) else []
    if index < len(prefix):
        yield root, prefix[index]
    else:
        yield root, sub.get("items")
        yield root, sub.get("unevaluatedItems")
    yield root, sub.get("contains")


def lookup(values: Any, location: Location) -> tuple[bool, Any]:
    """(True, the value at `location`) or (False, None) when `values` has no such place."""
    for part in location:
        if not _has(values, part):
            return False, None
        values = values[part]
    return True, values


def _has(values: Any, part: str | int) -> bool:
    if isinstance(values, dict):
        return isinstance(part, str) and part in values
    return isinstance(values, list) and isinstance(part, int) and 0 <= part < len(values)


# -- secrets in messages ----------------------------------------------------------------------

# Shorter secret values are not looked for in messages: hiding every "1" or "on" would garble
# them while protecting little.
REDACT_MIN_CHARS = 4
REDACTED = "********"


def secret_strings(values: Any, schemas: Iterable[Any]) -> frozenset[str]:
    """The text of every secret value in `values` (each string inside a secret mapping or list
    too), to keep them out of messages that quote what the engine or a command said."""
    found: set[str] = set()
    for location in secret_locations(values, schemas):
        found.update(_texts(lookup(values, location)[1]))
    return frozenset(text for text in found if len(text) >= REDACT_MIN_CHARS)


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, str):
        yield value
    elif value is not None and not isinstance(value, bool):
        yield json.dumps(value)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of a secret replaced by REDACTED, longest secrets first."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
