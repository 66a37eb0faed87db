"""Text PostgreSQL cannot store is refused before any route sees it.

A NUL character or an unpaired surrogate (JSON allows "\\u0000" and "\\ud800") reaches the
database driver as an error, which would be a 500. Every request is checked once, here:
the path (a 404: no object can have such a name), the query and a JSON body (a 400 that
names each place).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import request

from catalog.errors import NotFound, ValidationFailed

MESSAGE = "NUL characters and unpaired surrogates are not allowed"


def unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _unstorable_paths(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if unstorable(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if unstorable(str(key)):
                yield where
            else:
                yield from _unstorable_paths(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable_paths(item, f"{path}[{index}]")


def refuse_unstorable_text() -> None:
    """A `before_request` hook."""
    if unstorable(request.path):
        raise NotFound("no such resource: the path holds a character no name can have")
    bad = [
        name
        for name, value in request.args.items(multi=True)
        if unstorable(name) or unstorable(value)
    ]
    if request.is_json:
        bad.extend(_unstorable_paths(request.get_json(silent=True), ""))
    if bad:
        raise ValidationFailed(
            "the request holds text the catalog cannot store",
            errors=[{"path": path, "message": MESSAGE} for path in bad],
        )
