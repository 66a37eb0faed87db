"""Regular expressions of JSON Schemas (`pattern`, `patternProperties`), compiled once each."""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def pattern_search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches somewhere in `text` (JSON Schema patterns are not anchored);
    a pattern that does not compile matches nothing."""
    compiled = _compiled(pattern)
    return compiled is not None and compiled.search(text) is not None
