"""Safe YAML loading of manifests: tags, alias bombs, size, depth, encoding, duplicates (D28)."""

from __future__ import annotations

import re
import time

import pytest

from packages.errors import ManifestError
from packages.limits import Limits
from packages.yamlload import load_yaml


def _billion_laughs(levels: int = 9, width: int = 10) -> bytes:
    lines = [b'l0: &l0 "lol"']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"l{level}: &l{level} [{refs}]".encode())
    return b"\n".join(lines) + b"\n"


def _refusal(data: bytes, limits: Limits | None = None) -> str:
    with pytest.raises(ManifestError) as caught:
        load_yaml(data) if limits is None else load_yaml(data, limits)
    (problem,) = caught.value.problems
    assert problem.path == "manifest.yaml"
    return problem.message


def test_loads_plain_data():
    data = b"name: org.example.app\nversion: 1.2.0\nports: [80, 443]\nflag: true\nnothing: null\n"

    assert load_yaml(data) == {
        "name": "org.example.app",
        "version": "1.2.0",
        "ports": [80, 443],
        "flag": True,
        "nothing": None,
    }


def test_dates_stay_strings_as_json_has_no_dates():
    assert load_yaml(b"released: 2024-01-31\n") == {"released": "2024-01-31"}


def test_byte_order_mark_is_tolerated():
    assert load_yaml(b"\xef\xbb\xbfa: 1\n") == {"a": 1}


def test_empty_document_is_none():
    assert load_yaml(b"") is None


def test_a_few_aliases_and_merge_keys_are_fine():
    data = b"base: &base {image: nginx, user: app}\nweb: {<<: *base, user: www}\nalso: *base\n"

    assert load_yaml(data) == {
        "base": {"image": "nginx", "user": "app"},
        "web": {"image": "nginx", "user": "www"},
        "also": {"image": "nginx", "user": "app"},
    }


def test_overriding_a_key_merged_through_two_levels_is_not_a_duplicate():
    data = b"a: &a {x: 1, y: 1}\nb: &b {<<: *a, x: 2}\nc: {<<: *b, y: 3}\n"

    loaded = load_yaml(data)

    assert loaded["b"] == {"x": 2, "y": 1}
    assert loaded["c"]["y"] == 3  # (PyYAML itself resolves c.x to 1 here, not 2)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            _billion_laughs(),
            "more than 50000 nodes once aliases are expanded (line 6)",
            id="billion-laughs",
        ),
        pytest.param(
            b"a: &a x\nb: [" + b", ".join([b"*a"] * 65) + b"]\n",
            "too many YAML aliases: more than 64 (line 2)",
            id="alias-count",
        ),
        pytest.param(
            # 62 aliases, under the alias limit, but doubling 31 times: 2**31 nodes expanded
            b"l0: &l0 [x, x]\n"
            + b"".join(f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]\n".encode() for i in range(1, 32)),
            "more than 50000 nodes once aliases are expanded",
            id="doubling-chain-under-alias-limit",
        ),
        pytest.param(b"a: &a [1, *a]\n", "recursive YAML alias *a", id="recursive-alias"),
        pytest.param(b"a: *nowhere\n", "undefined YAML alias *nowhere (line 1)", id="undefined"),
    ],
)
def test_alias_bombs_are_refused_before_expansion(data, expected):
    started = time.perf_counter()

    assert expected in _refusal(data)
    # Expanding any of these would take minutes and gigabytes; counting takes microseconds.
    assert time.perf_counter() - started < 1.0


def test_node_limit_counts_expanded_aliases_even_with_a_generous_alias_limit():
    limits = Limits(max_yaml_aliases=10_000, max_yaml_nodes=1_000)

    assert "more than 1000 nodes once aliases are expanded" in _refusal(_billion_laughs(), limits)


def test_python_tags_are_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    data = f'x: !!python/object/apply:os.system ["touch {marker}"]\n'.encode()

    message = _refusal(data)

    assert message == "YAML tag !!python/object/apply:os.system is not allowed (line 1)"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("data", "tag"),
    [
        (b"a: 1\nb: !!python/object:os.Popen {args: [ls]}\n", "!!python/object:os.Popen"),
        (
            b"b: !!python/object/new:subprocess.Popen [[ls]]\n",
            "!!python/object/new:subprocess.Popen",
        ),
        (b"b: !!python/name:os.system\n", "!!python/name:os.system"),
        (b"b: !!python/module:os\n", "!!python/module:os"),
        (b"b: !!binary aGVsbG8=\n", "!!binary"),
        (b"b: !!set {x}\n", "!!set"),
        (b"b: !!timestamp 2024-01-01\n", "!!timestamp"),
        (b"b: !custom thing\n", "!custom"),
    ],
)
def test_tags_outside_json_types_are_refused_naming_tag_and_line(data, tag):
    line = data.count(b"\n")

    assert _refusal(data) == f"YAML tag {tag} is not allowed (line {line})"


def test_explicit_core_tags_are_allowed():
    assert load_yaml(b"a: !!str 1.0\nb: !!int '7'\nc: ! plain\n") == {
        "a": "1.0",
        "b": 7,
        "c": "plain",
    }


@pytest.mark.parametrize(
    ("data", "limits", "expected"),
    [
        pytest.param(
            b"a: " + b"x" * 300 * 1024 + b"\n",
            None,
            f"too large: {300 * 1024 + 4} bytes, the limit is {256 * 1024}",
            id="over-default-size",
        ),
        pytest.param(
            b"a: 123456789\n", Limits(max_manifest_bytes=8), "the limit is 8", id="over-small-limit"
        ),
        pytest.param(
            b"[" * 500 + b"]" * 500,
            None,
            "YAML nested too deeply: more than 32 levels (line 1)",
            id="deep-flow-sequences",
        ),
        pytest.param(
            b"".join(b"  " * i + b"k:\n" for i in range(40)),
            None,
            "YAML nested too deeply: more than 32 levels (line 33)",
            id="deep-block-mappings",
        ),
        pytest.param(
            b"d: &d " + b"[" * 20 + b"1" + b"]" * 20 + b"\nx: " + b"[" * 20 + b"*d" + b"]" * 20,
            None,
            "YAML nested too deeply: more than 32 levels (line 2)",
            id="depth-through-an-alias",
        ),
        pytest.param(
            b"- x\n" * 60, Limits(max_yaml_nodes=50), "more than 50 nodes", id="too-many-nodes"
        ),
    ],
)
def test_size_depth_and_node_limits(data, limits, expected):
    assert expected in _refusal(data, limits)


def test_very_deep_document_is_refused_by_the_parser_itself():
    # libyaml stops at 1000 levels on its own, before the first event reaches the count.
    message = _refusal(b"[" * 100_000 + b"]" * 100_000)

    assert re.search("nested too deeply|exceeded maximum nesting depth", message)


def test_nesting_up_to_the_limit_is_fine():
    data = b"[" * 32 + b"1" + b"]" * 32

    value = load_yaml(data)
    for _ in range(32):
        (value,) = value
    assert value == 1


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"name: caf\xc3\n", 9),  # truncated sequence
        (b"\xff\xfename: x\n", 0),  # UTF-16 byte order mark
        (b"a: \xed\xa0\x80\n", 3),  # an encoded surrogate
        (b"\xef\xbb\xbfa: \xc0\xaf\n", 6),  # overlong "/", after a UTF-8 byte order mark
    ],
)
def test_invalid_utf8_is_refused_with_its_byte_offset(data, offset):
    assert _refusal(data) == f"not valid UTF-8 (byte offset {offset})"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b"name: a\nversion: 1\nname: b\n",
            "duplicate key 'name' at line 3 (first defined at line 1)",
        ),
        (
            b"services:\n  web:\n    image: a\n    image: b\n",
            "duplicate key 'image' at line 4 (first defined at line 3)",
        ),
        (b"{a: 1, a: 2}\n", "duplicate key 'a' at line 1 (first defined at line 1)"),
        (b"1: a\n0x1: b\n", "duplicate key 1 at line 2 (first defined at line 1)"),
    ],
)
def test_duplicate_keys_are_refused(data, expected):
    assert _refusal(data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a: [1,\n b: }", "invalid YAML at line 2, column 5: "),
        (b"a: b: c\n", "invalid YAML at line 1, column 5: mapping values are not allowed"),
        (b"a:\n  - x\n y: 1\n", "invalid YAML at line 3, column 2"),
        (b"a: 'open\n", "invalid YAML at line 2, column 1: found unexpected end of stream"),
        (b"--- 1\n--- 2\n", "a manifest is a single YAML document (second at line 2)"),
        (b"a: !!int abc\n", "invalid YAML value: invalid literal for int()"),
        (b"a: \x01\n", "unacceptable character #x0001 at character offset 3"),
    ],
)
def test_syntax_errors_name_line_and_column(data, expected):
    assert expected in _refusal(data)


def test_problem_path_is_the_source_name():
    with pytest.raises(ManifestError) as caught:
        load_yaml(b"a: [", source="files/extra.yaml")

    assert caught.value.problems[0].path == "files/extra.yaml"
