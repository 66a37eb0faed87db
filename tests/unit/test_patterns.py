"""Parameter schema patterns are matched by RE2: linear time whatever the pattern, and a
pattern RE2 cannot match is refused at upload naming where it is."""

from __future__ import annotations

import time

import pytest

from packages.errors import ManifestValidationError
from packages.manifest import validate_manifest, validate_parameters
from packages.patterns import pattern_search
from tests.unit.test_secrets import manifest_with

CATASTROPHIC = "^(a+)+$"  # exponential for a backtracking engine on "aaaa...!"
HOSTILE = "a" * 30 + "!"
BUDGET = 0.1  # seconds; Python's `re` needs minutes for this one


def problems(schema: dict, values: dict) -> list[tuple[str, str]]:
    with pytest.raises(ManifestValidationError) as caught:
        validate_parameters(schema, values)
    return [(p.path, p.message) for p in caught.value.problems]


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


@pytest.mark.parametrize(
    ("schema", "values", "path"),
    [
        pytest.param(
            {"type": "object", "properties": {"name": {"type": "string", "pattern": CATASTROPHIC}}},
            {"name": HOSTILE},
            "parameters.name",
            id="pattern",
        ),
        pytest.param(
            {"type": "object", "properties": {"env": {
                "type": "object", "patternProperties": {CATASTROPHIC: {"type": "integer"}},
                "additionalProperties": False}}},
            {"env": {HOSTILE: 1}},
            f'parameters.env["{HOSTILE}"]',  # unknown: no pattern matches it
            id="patternProperties and additionalProperties",
        ),
    ],
)  # fmt: skip
def test_a_catastrophic_pattern_answers_within_100_ms(schema, values, path):
    found, took = timed(lambda: problems(schema, values))

    assert took < BUDGET, f"{took:.3f} s"
    assert [p for p, _ in found] == [path]


def test_patterns_still_mean_what_they_say():
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": CATASTROPHIC}}}

    assert validate_parameters(schema, {"name": "a" * 30}) == {"name": "a" * 30}
    assert problems(schema, {"name": "ab"}) == [
        ("parameters.name", f"must match the pattern {CATASTROPHIC}")
    ]
    assert pattern_search("b", "abc")  # a search, not anchored
    assert not pattern_search("(?=a)", "a")  # RE2 refuses it: it matches nothing


@pytest.mark.parametrize(
    ("parameters", "path"),
    [
        pytest.param(
            {"type": "object", "properties": {"name": {"type": "string", "pattern": "(a)\\1"}}},
            "parameters.properties.name.pattern",
            id="a backreference",
        ),
        pytest.param(
            {"type": "object", "properties": {"env": {
                "type": "object", "patternProperties": {"^(?!x)": {}}}}},
            'parameters.properties.env.patternProperties["^(?!x)"]',
            id="a lookahead in patternProperties",
        ),
    ],
)  # fmt: skip
def test_a_pattern_re2_cannot_match_is_refused_at_upload_naming_it(parameters, path):
    with pytest.raises(ManifestValidationError) as caught:
        validate_manifest(manifest_with(parameters))

    assert [(p.path, "RE2" in p.message) for p in caught.value.problems] == [(path, True)]


def test_unevaluated_properties_beside_pattern_properties_is_refused():
    parameters = {
        "type": "object",
        "patternProperties": {"^x": {}},
        "unevaluatedProperties": False,
    }
    with pytest.raises(ManifestValidationError) as caught:
        validate_manifest(manifest_with(parameters))

    assert [p.path for p in caught.value.problems] == ["parameters.unevaluatedProperties"]


def test_a_default_is_checked_with_re2_too():
    parameters = {"type": "object", "properties": {
        "name": {"type": "string", "pattern": CATASTROPHIC, "default": HOSTILE}}}  # fmt: skip

    started = time.perf_counter()
    with pytest.raises(ManifestValidationError) as caught:
        validate_manifest(manifest_with(parameters))

    assert time.perf_counter() - started < BUDGET * 5  # the whole manifest is checked too
    assert [p.path for p in caught.value.problems] == ["parameters.properties.name.default"]
