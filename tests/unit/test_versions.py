"""Semver parsing, npm-style ranges and version selection."""

from __future__ import annotations

import re

import pytest

from packages.versions import (
    is_range,
    is_version,
    parse_range,
    parse_version,
    select_version,
    version_key,
)


@pytest.mark.parametrize(
    "text",
    ["0.0.0", "1.2.3", "10.20.30", "1.0.0-rc.1", "1.0.0-alpha.beta.1+build.5", "1.0.0+20240101"],
)
def test_valid_versions(text):
    assert str(parse_version(text)) == text
    assert is_version(text)


@pytest.mark.parametrize(
    "value",
    [
        "1.2",
        "1",
        "v1.2.3",
        "01.2.3",
        "1.2.3-01",
        "1.2.3 ",
        " 1.2.3",
        "1.2.3\n",
        "",
        "latest",
        1.2,
        None,
    ],
)
def test_invalid_versions_name_the_value(value):
    with pytest.raises(
        ValueError, match=re.escape(repr(value)) if isinstance(value, str) else "string"
    ):
        parse_version(value)
    assert not is_version(value)


def test_overlong_version_is_refused():
    assert not is_version("1.2.3-" + "a" * 300)


@pytest.mark.parametrize(
    "text", [">=8.0.0 <9.0.0", "^1.2.0", "~1.2", "1.x", "*", "1.2.3", "=1.2.3", ">=1.0.0 || <0.5"]
)
def test_valid_ranges(text):
    assert parse_range(text) is not None
    assert is_range(text)


@pytest.mark.parametrize("value", ["", "latest", "garbage", ">=", " ^1.0.0", "^1.0.0\n", 8, None])
def test_invalid_ranges(value):
    with pytest.raises(ValueError, match="range"):
        parse_range(value)
    assert not is_range(value)


def test_version_key_orders_by_semver_precedence():
    shuffled = [
        "1.0.0",
        "2.0.0",
        "1.0.0-rc.1",
        "1.0.0-beta.11",
        "1.0.0-alpha",
        "10.0.0",
        "1.0.0-beta.2",
        "1.0.0-alpha.1",
        "1.0.0-beta",
        "0.9.0",
        "1.0.0-alpha.beta",
    ]

    assert sorted(shuffled, key=version_key) == [
        "0.9.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "2.0.0",
        "10.0.0",
    ]


def test_version_key_is_total_with_build_metadata():
    versions = ["1.0.0+b", "1.0.0", "1.0.0+a"]

    assert sorted(versions, key=version_key) == sorted(reversed(versions), key=version_key)


AVAILABLE = ["1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1", "2.0.0", "2.1.0", "3.0.0-beta.1"]


@pytest.mark.parametrize(
    ("constraint", "yanked", "expected"),
    [
        (None, (), "2.1.0"),  # newest release; pre-releases only when nothing else
        (None, ("2.1.0", "2.0.0"), "1.10.0"),
        ("^1.0.0", (), "1.10.0"),  # numeric, not string, order
        ("~1.2", (), "1.2.0"),
        ("1.x", (), "1.10.0"),
        (">=1.0.0 <2.0.0", ("1.10.0",), "1.2.0"),  # yanked skipped by a range
        ("*", (), "2.1.0"),
        ("~2.0.0-rc.1", (), "2.0.0"),  # a range from a pre-release includes the release
        ("~2.0.0-rc.1", ("2.0.0",), "2.0.0-rc.1"),
        ("2.0.0-rc.1", (), "2.0.0-rc.1"),
        ("^3.0.0-beta.0", (), "3.0.0-beta.1"),
        ("1.2.0", ("1.2.0",), "1.2.0"),  # pinned exactly: yanked still resolves
        ("=1.2.0", ("1.2.0",), "1.2.0"),
        ("1.3.0", (), None),
        ("^4.0.0", (), None),
        ("^2.0.0", ("2.0.0", "2.1.0"), None),
    ],
)
def test_select_version(constraint, yanked, expected):
    assert select_version(constraint, AVAILABLE, yanked=yanked) == expected


def test_select_version_falls_back_to_prereleases_without_a_release():
    assert select_version(None, ["0.1.0-alpha", "0.1.0-beta"]) == "0.1.0-beta"


def test_select_version_ignores_strings_that_are_not_versions():
    assert select_version("^1.0.0", ["1.0.0", "latest", "1.5"]) == "1.0.0"


def test_select_version_refuses_a_bad_range():
    with pytest.raises(ValueError, match="'latest' is not a version range"):
        select_version("latest", AVAILABLE)


# Hole 9: semantic_version's `\d` takes any Unicode digit; fullwidth and Arabic-Indic
# look-alikes of 1.0.0 would publish beside it and match a pin on it.
LOOK_ALIKES = [
    "\uff11.\uff10.\uff10",
    "\u0661.\u0660.\u0660",
    "1.0.\uff10",
    "1.0.0-rc.\uff11",
    "1.0.0+build.\u0663",
    "\U0001d7cf.0.0",
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_versions_with_unicode_digits_are_refused(text):
    with pytest.raises(ValueError, match="ASCII"):
        parse_version(text)
    assert not is_version(text)


@pytest.mark.parametrize(
    "text", [*LOOK_ALIKES, "^\uff11.0.0", ">=1.0.0 <\u0662.0.0", "\uff11.x", "~1.\uff12"]
)
def test_ranges_with_unicode_digits_are_refused(text):
    with pytest.raises(ValueError, match="ASCII"):
        parse_range(text)
    assert not is_range(text)


def test_a_pin_never_resolves_to_a_look_alike():
    available = ["1.0.0", "\uff11.\uff10.\uff10", "\u0661.\u0660.\u0660"]
    assert select_version("1.0.0", available) == "1.0.0"
    assert select_version("=1.0.0", ["\uff11.\uff10.\uff10"]) is None
    assert select_version("^1.0.0", ["\u0661.\u0661.\u0660"]) is None
