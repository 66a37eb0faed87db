"""Semantic versions (semver 2.0) and npm-style ranges, and picking a version from a list."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from semantic_version import NpmSpec, Version

MAX_LENGTH = 256  # as npm: longer strings are refused before parsing

# semantic_version matches with `\d` and `$`, which take any Unicode digit (fullwidth,
# Arabic-Indic) and a final newline: a look-alike of 1.0.0 would publish beside it and
# satisfy a pin on it.
# Every version and range is first held to ASCII semver grammar here.
_NUMBER = r"(?:0|[1-9][0-9]*)"
_IDENTIFIER = r"[0-9A-Za-z-]+"
_VERSION = re.compile(
    rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}"
    rf"(?:-{_IDENTIFIER}(?:\.{_IDENTIFIER})*)?(?:\+{_IDENTIFIER}(?:\.{_IDENTIFIER})*)?\Z",
    re.ASCII,
)
# A range is made of versions (possibly partial, `1.x`, `*`), operators, spaces and `||`.
_RANGE_CHARACTERS = re.compile(r"[0-9A-Za-z.+*<>=^~| -]+\Z", re.ASCII)


def parse_version(value: object) -> Version:
    """A strict semver 2.0 version (`1.2.3`, `1.0.0-rc.1+build.5`); ValueError names the value."""
    text = _checked_text(value, "version")
    if not _VERSION.match(text):
        raise ValueError(f"{text!r} is not a semantic version like 1.2.3 (ASCII digits only)")
    try:
        return Version(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a semantic version like 1.2.3") from None


def parse_range(value: object) -> NpmSpec:
    """An npm-style range (`>=8.0.0 <9.0.0`, `^1.2.0`, `~1.2`, `1.x`, `*`, `1.2.3`)."""
    text = _checked_text(value, "version range")
    if not _RANGE_CHARACTERS.match(text):
        raise ValueError(
            f"{text!r} is not a version range: only ASCII digits, letters, '.', '-', '+', "
            "'*', spaces and the operators < > = ^ ~ || may appear"
        )
    try:
        return NpmSpec(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a version range like '>=1.2.0 <2.0.0', '^1.2.0' or '1.x'"
        ) from None


def is_version(value: object) -> bool:
    """Whether `value` is a strict semver string."""
    try:
        parse_version(value)
    except ValueError:
        return False
    return True


def is_range(value: object) -> bool:
    """Whether `value` is a valid npm-style range (an exact version is one too)."""
    try:
        parse_range(value)
    except ValueError:
        return False
    return True


def version_key(value: str) -> tuple:
    """Sort key in semver precedence; build metadata, which has none, breaks ties stably."""
    version = parse_version(value)
    return (version.precedence_key, version.build)


def select_version(
    range_or_exact: str | None, available: Iterable[str], *, yanked: Collection[str] = ()
) -> str | None:
    """The newest of `available` matching `range_or_exact`, or None.

    Yanked versions are skipped unless pinned exactly (`1.2.3` or `=1.2.3`): a deployment
    pinned to one keeps working. With no constraint the newest release wins, and
    pre-releases are picked only when there is no release at all. Strings of `available`
    that are not versions are ignored.
    """
    versions = {str(v): s for s in available if (v := _try_version(s)) is not None}
    pinned = _exact_pin(range_or_exact)
    if pinned is not None:
        return versions.get(str(pinned))
    hidden = {str(v) for s in yanked if (v := _try_version(s)) is not None}
    candidates = [Version(key) for key in versions if key not in hidden]
    if range_or_exact is None:
        releases = [v for v in candidates if not v.prerelease]
        matching = releases or candidates
    else:
        spec = parse_range(range_or_exact)
        matching = [v for v in candidates if spec.match(v)]
    if not matching:
        return None
    newest = max(matching, key=lambda v: (v.precedence_key, v.build))
    return versions[str(newest)]


def _checked_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"a {what} must be a string, not {type(value).__name__}")
    # semantic_version's patterns accept a trailing newline; a stored version must not.
    if not value or value != value.strip():
        raise ValueError(f"{value!r} is not a {what}: empty or surrounded by spaces")
    if len(value) > MAX_LENGTH:
        raise ValueError(f"a {what} must be at most {MAX_LENGTH} characters")
    return value


def _try_version(value: object) -> Version | None:
    try:
        return parse_version(value)
    except ValueError:
        return None


def _exact_pin(range_or_exact: str | None) -> Version | None:
    if range_or_exact is None:
        return None
    return _try_version(range_or_exact.removeprefix("="))
