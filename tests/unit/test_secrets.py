"""Where a parameter schema hides values: every keyword that places `x-secret`, and what
cannot be masked refused at upload."""

from __future__ import annotations

import pytest

from packages.errors import ManifestValidationError
from packages.manifest import validate_manifest
from packages.secrets import redact, secret_locations, subschemas

SECRET = {"type": "string", "x-secret": True}


def obj(**properties):
    return {"type": "object", "properties": properties}


@pytest.mark.parametrize(
    ("schema", "values", "expected"),
    [
        pytest.param(
            {**obj(db={"$ref": "#/$defs/db"}), "$defs": {"db": obj(password=SECRET)}},
            {"db": {"password": "p", "host": "h"}},
            {("db", "password")},
            id="$ref into $defs",
        ),
        pytest.param(
            {**obj(a={"$ref": "#/definitions/s~1x"}), "definitions": {"s/x": SECRET}},
            {"a": "p"},
            {("a",)},
            id="$ref with an escaped pointer",
        ),
        pytest.param(
            obj(tokens={"type": "array", "items": SECRET}),
            {"tokens": ["t1", "t2"]},
            {("tokens", 0), ("tokens", 1)},
            id="items",
        ),
        pytest.param(
            obj(pair={"type": "array", "prefixItems": [{}, SECRET], "items": {}}),
            {"pair": ["user", "pass", "more"]},
            {("pair", 1)},
            id="prefixItems",
        ),
        pytest.param(
            obj(users={"type": "object", "additionalProperties": SECRET}),
            {"users": {"alice": "pa", "bob": "pb"}},
            {("users", "alice"), ("users", "bob")},
            id="additionalProperties",
        ),
        pytest.param(
            obj(env={"type": "object", "patternProperties": {"_KEY$": SECRET}}),
            {"env": {"API_KEY": "k", "HOME": "/h"}},
            {("env", "API_KEY")},
            id="patternProperties",
        ),
        pytest.param(
            obj(auth={"anyOf": [{"type": "null"}, obj(token=SECRET)]}),
            {"auth": {"token": "t"}},
            {("auth", "token")},
            id="anyOf",
        ),
        pytest.param(
            obj(auth={"oneOf": [{"type": "string", "x-secret": True}, {"type": "integer"}]}),
            {"auth": 12},  # matches the branch that is not secret: hidden all the same
            {("auth",)},
            id="oneOf, whatever branch matches",
        ),
        pytest.param(
            obj(auth={"allOf": [{"type": "object"}, obj(key=SECRET)]}),
            {"auth": {"key": "k"}},
            {("auth", "key")},
            id="allOf",
        ),
        pytest.param(
            {"type": "object", "if": obj(kind={}), "then": obj(secret=SECRET)},
            {"kind": "x", "secret": "s"},
            {("secret",)},
            id="if/then",
        ),
        pytest.param(
            {"type": "object", "dependentSchemas": {"user": obj(password=SECRET)}},
            {"user": "u", "password": "p"},
            {("password",)},
            id="dependentSchemas",
        ),
        pytest.param(
            {
                **obj(tree={"$ref": "#/$defs/node"}),
                "$defs": {"node": obj(key=SECRET, children={"items": {"$ref": "#/$defs/node"}})},
            },
            {"tree": {"key": "a", "children": [{"key": "b", "children": [{"key": "c"}]}]}},
            {
                ("tree", "key"),
                ("tree", "children", 0, "key"),
                ("tree", "children", 0, "children", 0, "key"),
            },
            id="a recursive $ref ends with the values",
        ),
        pytest.param(
            {**obj(a={"$ref": "#/$defs/a"}), "$defs": {"a": {"$ref": "#/$defs/a"}}},
            {"a": {"b": 1}},
            set(),
            id="a reference cycle",
        ),
    ],
)
def test_a_secret_is_found_wherever_the_schema_places_it(schema, values, expected):
    assert secret_locations(values, [schema]) == expected


def test_a_secret_of_any_schema_given_is_found():
    old, new = obj(password=SECRET), obj(password={"type": "string"}, key=SECRET)
    values = {"password": "p", "key": "k", "other": 1}

    assert secret_locations(values, [old, new]) == {("password",), ("key",)}


def test_names_that_look_like_keywords_are_names():
    schema = obj(**{"x-secret": {"type": "boolean"}, "$ref": {"type": "string"}})

    assert secret_locations({"x-secret": True, "$ref": "#"}, [schema]) == set()
    assert [path for path, _ in subschemas(schema)] == [
        (),
        ("properties", "x-secret"),
        ("properties", "$ref"),
    ]


def manifest_with(parameters):
    return {
        "format": "catalog/v1",
        "name": "org.example.app",
        "version": "1.0.0",
        "type": "application",
        "parameters": parameters,
        "services": {"web": {"image": "nginx:1.25"}},
    }


@pytest.mark.parametrize(
    ("parameters", "path", "message"),
    [
        pytest.param(
            obj(env={"type": "object", "propertyNames": {"x-secret": True}}),
            "parameters.properties.env.propertyNames.x-secret",
            "property names are always shown",
            id="propertyNames",
        ),
        pytest.param(
            obj(a={"items": {"x-secret": "yes"}}),
            "parameters.properties.a.items.x-secret",
            "must be true or false",
            id="not a boolean, nested",
        ),
        pytest.param(
            {**obj(a={"$ref": "#sec"}), "$defs": {"s": {"$anchor": "sec", "x-secret": True}}},
            'parameters["$defs"].s["$anchor"]',
            "is not supported",
            id="$anchor",
        ),
        pytest.param(
            {**obj(a={"$ref": "#/$defs/s"}), "$defs": {"s": {"$id": "urn:x", "x-secret": True}}},
            'parameters["$defs"].s["$id"]',
            "only the schema itself",
            id="$id below the root",
        ),
        pytest.param(
            obj(a={"$ref": "https://example.com/secret.json"}),
            'parameters.properties.a["$ref"]',
            "only references inside the schema",
            id="a remote $ref",
        ),
    ],
)
def test_what_cannot_be_masked_is_refused_at_upload(parameters, path, message):
    with pytest.raises(ManifestValidationError) as caught:
        validate_manifest(manifest_with(parameters))

    assert any(p.path == path and message in p.message for p in caught.value.problems), [
        (p.path, p.message) for p in caught.value.problems
    ]


def test_secret_values_are_redacted_from_messages_whatever_their_place():
    from workers.events import spec_secrets

    schema = obj(keys={"items": SECRET}, vault={"type": "object", "x-secret": True}, note={})
    spec = {
        "apps": [
            {
                "parameters": {
                    "keys": ["k-one-1", "no"],
                    "vault": {"inner": "deep-secret", "port": 54321, "on": True},
                    "note": "plain text",
                },
                "manifest": {"parameters": schema},
            }
        ]
    }

    hidden = spec_secrets(spec)

    assert hidden == {"k-one-1", "deep-secret", "54321"}  # short ones and booleans are left
    message = "engine said: bad env k-one-1=deep-secret:54321 (plain text)"
    assert redact(message, hidden) == "engine said: bad env ********=********:******** (plain text)"
