"""Parameter migrations: the manifest's `migrations` checked at upload, and `migrate`, the pure
function an app's upgrade applies (packages/migrations.py)."""

from __future__ import annotations

import copy
import json

import pytest

from catalog import secretbox
from packages import migrations
from packages.errors import ManifestValidationError
from packages.manifest import validate_manifest
from packages.migrations import matching, migrate, parameter_path, sealed_locations

SECRET = "correct-horse-battery"
SEALED = {"$secret": "gAAAAAB-a-fernet-token-that-never-shows"}

# The new version's parameter schema.
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["database_host"],
    "properties": {
        "database_host": {"type": "string"},
        "mode": {"enum": ["legacy", "fast"], "default": "fast"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 5432},
        "database_password": {"type": "string", "minLength": 12, "x-secret": True},
    },
}
UPGRADE = {
    "from": ">=1.0.0 <2.0.0",
    "rename": {"db_host": "database_host", "db_password": "database_password"},
    "set": {"mode": "legacy"},
    "drop": ["verbose"],
}


# --- migrate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "from_version", "listed", "expected", "applied", "refused"),
    [
        pytest.param(
            {"db_host": "db"},
            "1.0.0",
            [{"from": "1.x", "rename": {"db_host": "database_host"}}],
            {"database_host": "db"},
            ["migrations[0]: rename db_host -> database_host"],
            [],
            id="rename",
        ),
        pytest.param(
            {"database_host": "db", "mode": "fast"},
            "1.0.0",
            [{"from": "1.x", "set": {"mode": "legacy"}}],
            {"database_host": "db", "mode": "legacy"},
            ["migrations[0]: set mode"],
            [],
            id="set-replaces",
        ),
        pytest.param(
            {"database_host": "db", "verbose": True},
            "1.0.0",
            [{"from": "1.x", "drop": ["verbose", "never_set"]}],
            {"database_host": "db"},
            ["migrations[0]: drop verbose"],
            [],
            id="drop-what-is-set",
        ),
        pytest.param(
            {"db_host": "db", "verbose": True},
            "1.4.2",
            [UPGRADE],
            {"database_host": "db", "mode": "legacy"},
            [
                "migrations[0]: rename db_host -> database_host",
                "migrations[0]: set mode",
                "migrations[0]: drop verbose",
            ],
            [],
            id="rename-set-drop",
        ),
        pytest.param(
            {"host": "db"},
            "1.0.0",
            [
                {"from": "<3.0.0", "rename": {"host": "db_host"}},
                {"from": "^1.0.0", "rename": {"db_host": "database_host"}},
                {"from": ">=2.0.0", "set": {"mode": "legacy"}},
            ],
            {"database_host": "db"},
            [
                "migrations[0]: rename host -> db_host",
                "migrations[1]: rename db_host -> database_host",
            ],
            [],
            id="several-match-in-order-each-on-the-last-result",
        ),
        pytest.param(
            {"database_host": "db"},
            "0.9.0",
            [UPGRADE],
            {"database_host": "db"},
            [],
            [],
            id="none-matching",
        ),
        pytest.param(
            {"database_host": "db"},
            "1.0.0",
            [{"from": "1.x", "rename": {"db_host": "x"}}],
            {"database_host": "db"},
            [],
            [],
            id="rename-of-a-missing-key-does-nothing",
        ),
        pytest.param(
            {"db_host": "old", "database_host": "new"},
            "1.0.0",
            [{"from": "1.x", "rename": {"db_host": "database_host"}}],
            {"db_host": "old", "database_host": "new"},
            [],
            [
                ("database_host", "is set already: migrations[0] cannot rename db_host onto it"),
                ("db_host", "unknown key"),
            ],
            id="rename-onto-a-set-name-is-refused-not-overwritten",
        ),
        pytest.param(
            {"database_host": "db"},
            "1.0.0-rc.1",
            [{"from": "1.x", "set": {"mode": "legacy"}}],
            {"database_host": "db"},
            [],
            [],
            id="a-pre-release-matches-as-npm-says",
        ),
    ],
)
def test_migrate(parameters, from_version, listed, expected, applied, refused):
    given = copy.deepcopy(parameters)

    result = migrate(parameters, from_version, listed, SCHEMA)

    assert result == (expected, applied, refused)
    assert parameters == given  # the input is left as it was


def test_what_the_new_schema_refuses_is_listed_and_kept_never_dropped():
    old = {"db_host": "db", "cache_size": 64, "port": "5432", "database_password": "short"}

    result = migrate(old, "1.0.0", [], SCHEMA)

    assert result.parameters == old
    assert result.applied == []
    assert result.refused == [
        ("cache_size", "unknown key"),
        ("database_host", "is required"),
        ("database_password", "must be at least 12 characters long"),
        ("db_host", "unknown key"),
        ("port", "must be an integer"),
    ]
    assert "short" not in json.dumps([result.applied, result.refused])


def test_a_migration_refused_by_the_result_is_listed_after_the_changes_it_made():
    listed = [{"from": "1.x", "rename": {"db_host": "database_host"}}]

    result = migrate({"db_host": 5, "legacy": True}, "1.0.0", listed, SCHEMA)

    assert result.parameters == {"database_host": 5, "legacy": True}
    assert result.applied == ["migrations[0]: rename db_host -> database_host"]
    assert result.refused == [("database_host", "must be a string"), ("legacy", "unknown key")]


def test_a_sealed_secret_is_renamed_untouched_and_never_printed():
    old = {"db_host": "db", "db_password": copy.deepcopy(SEALED)}

    result = migrate(old, "1.2.0", [UPGRADE], SCHEMA, to_version="2.0.0")

    assert result.parameters == {
        "database_host": "db",
        "database_password": SEALED,
        "mode": "legacy",
    }
    # Without a way to open it, the sealed value is not checked (its caller checks it).
    assert result.refused == []
    assert SEALED["$secret"] not in json.dumps([result.applied, result.refused])


def test_reveal_opens_sealed_secrets_for_the_check_only():
    def reveal(values):  # as the catalog's secret box would open it
        return {key: "short" if value == SEALED else value for key, value in values.items()}

    result = migrate(
        {"db_host": "db", "db_password": dict(SEALED)}, "1.0.0", [UPGRADE], SCHEMA, reveal=reveal
    )

    assert result.parameters["database_password"] == SEALED  # still sealed
    assert result.refused == [("database_password", "must be at least 12 characters long")]
    assert "short" not in json.dumps(result)  # the result holds the sealed value only


def test_a_clear_secret_is_renamed_but_never_in_a_line_or_a_reason():
    old = {"db_host": "db", "db_password": SECRET, "stray": SECRET}

    result = migrate(old, "1.0.0", [UPGRADE], SCHEMA)

    assert result.parameters["database_password"] == SECRET
    assert result.refused == [("stray", "unknown key")]
    assert SECRET not in json.dumps([result.applied, result.refused])


@pytest.mark.parametrize(
    ("from_version", "to_version", "indexes"),
    [
        ("1.0.0", None, [0, 1]),
        ("1.0.0", "2.0.0", [0, 1]),
        ("1.9.9", "1.10.0", [0, 1]),
        ("2.0.0", "3.0.0", [1]),
        ("1.0.0", "1.0.0", []),  # not a move
        ("1.0.0", "1.0.0+build.2", []),  # the same precedence
        ("2.0.0", "1.5.0", []),  # a downgrade applies none
        ("0.1.0", "2.0.0", []),
        ("not-a-version", "2.0.0", []),
    ],
)
def test_which_migrations_match(from_version, to_version, indexes):
    listed = [{"from": "^1.0.0"}, {"from": ">=1.0.0"}, {"from": ">=4.0.0"}]

    assert [i for i, _ in matching(listed, from_version, to_version)] == indexes


def test_a_downgrade_migrates_nothing_and_lists_what_the_old_schema_refuses():
    result = migrate({"db_host": "db"}, "2.0.0", [UPGRADE], SCHEMA, to_version="1.5.0")

    assert result == ({"db_host": "db"}, [], [("database_host", "is required"),
                                              ("db_host", "unknown key")])  # fmt: skip


def test_parameter_paths_and_sealed_locations():
    assert [parameter_path(n) for n in ("port", "limits.max", '["odd key"]', "")] == [
        "parameters.port", "parameters.limits.max", 'parameters["odd key"]', "parameters",
    ]  # fmt: skip
    nested = {"a": SEALED, "b": {"c": [1, SEALED]}, "d": {"$secret": 3}}
    assert list(sealed_locations(nested)) == [("a",), ("b", "c", 1)]


def test_the_sealed_shape_is_the_secret_box_s():
    assert migrations.SEALED == secretbox.SEALED


# --- the manifest's migrations ------------------------------------------------------------

PARAMETERS = {
    "type": "object",
    "properties": {
        "database_host": {"type": "string"},
        "mode": {"enum": ["legacy", "fast"]},
        "password": {"type": "string", "minLength": 12, "x-secret": True},
        "limits": {"type": "object", "properties": {"max": {"type": "integer"}}},
    },
    "patternProperties": {"^label_": {"type": "string"}},
}


def manifest(migration_list, parameters=PARAMETERS) -> dict:
    doc = {
        "format": "catalog/v1",
        "name": "org.example.app",
        "version": "2.0.0",
        "type": "application",
        "services": {"web": {"image": "nginx:1.25"}},
        "migrations": migration_list,
    }
    if parameters is not None:
        doc["parameters"] = parameters
    return doc


def problems(doc: dict) -> list[tuple[str, str]]:
    with pytest.raises(ManifestValidationError) as caught:
        validate_manifest(doc)
    return [(p.path, p.message) for p in caught.value.problems]


def test_a_manifest_with_migrations_is_accepted_as_written():
    listed = [
        UPGRADE | {"rename": {"db_host": "database_host", "tag": "label_team"}},
        {"from": "<1.0.0", "set": {"limits": {"max": 3}}},
    ]

    assert validate_manifest(manifest(listed)).raw["migrations"] == listed


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        pytest.param(
            [{"from": "one", "drop": ["a"]}],
            [("migrations[0].from", "'one' is not a version range like '>=1.0.0 <2.0.0'")],
            id="from-not-a-range",
        ),
        pytest.param(
            [{"from": "1.x", "rename": {"old": "mode"}, "drop": ["mode"]}],
            [("migrations[0].rename.old", "renames onto mode, which this migration also drops")],
            id="rename-onto-a-dropped-name",
        ),
        pytest.param(
            [{"from": "1.x", "rename": {"old": "mode"}, "set": {"mode": "fast"}}],
            [("migrations[0].rename.old", "renames onto mode, which this migration also sets")],
            id="rename-onto-a-set-name",
        ),
        pytest.param(
            [{"from": "1.x", "rename": {"a": "mode", "mode": "database_host"}}],
            [
                (
                    "migrations[0].rename.a",
                    "renames onto mode, which this migration also renames; "
                    "rename it in a migration of its own",
                )
            ],
            id="a-chain-in-one-migration",
        ),
        pytest.param(
            [{"from": "1.x", "rename": {"a": "mode", "b": "mode"}}],
            [("migrations[0].rename.b", "renames onto mode, as rename.a does")],
            id="two-renames-onto-one-name",
        ),
        pytest.param(
            [{"from": "1.x", "rename": {"mode": "mode"}}],
            [("migrations[0].rename.mode", "renames onto mode, which is the same name")],
            id="rename-onto-itself",
        ),
        pytest.param(
            [{"from": "1.x", "set": {"mode": "fast"}, "drop": ["mode"]}],
            [("migrations[0].set.mode", "is also dropped by this migration")],
            id="set-and-dropped",
        ),
        pytest.param(
            [{"from": "1.x", "rename": {"mode_old": "mode"}, "drop": ["mode_old"]}],
            [("migrations[0].drop[0]", "mode_old is renamed by this migration: rename or drop it")],
            id="renamed-and-dropped",
        ),
        pytest.param(
            [{"from": "1.x", "rename": {"host": "db_host"}}],
            [
                (
                    "migrations[0].rename.host",
                    "renames onto db_host, not a parameter of this version",
                )
            ],
            id="rename-target-not-in-the-schema",
        ),
        pytest.param(
            [{"from": "1.x", "set": {"verbose": True}}],
            [("migrations[0].set.verbose", "is not a parameter of this version")],
            id="set-name-not-in-the-schema",
        ),
        pytest.param(
            [{"from": "1.x", "set": {"mode": "slow", "limits": {"max": "3"}, "password": "x"}}],
            [
                ("migrations[0].set.limits.max", "must be an integer"),
                ("migrations[0].set.mode", 'must be one of: "legacy", "fast"'),
                ("migrations[0].set.password", "must be at least 12 characters long"),
            ],
            id="set-values-the-schema-refuses",
        ),
        pytest.param(
            [{"from": "1.x", "set": {"database_host": {"$secret": "forged"}}}],
            [
                (
                    "migrations[0].set.database_host",
                    'a mapping whose only key is "$secret" is reserved for stored secrets',
                )
            ],
            id="set-a-forged-sealed-secret",
        ),
        pytest.param(
            [{"from": "1.x"}, {"from": "1.x", "rename": {}, "set": {}, "drop": []}],
            [
                ("migrations[0]", "does nothing: give rename, set or drop"),
                ("migrations[1]", "does nothing: give rename, set or drop"),
            ],
            id="doing-nothing",
        ),
        pytest.param(
            [{"rename": {"old-name": "mode"}, "drop": ["a", "a"], "copy": {}}],
            [
                ("migrations[0].copy", "unknown key"),
                ("migrations[0].drop", "must not contain duplicates"),
                ("migrations[0].from", "is required"),
                (
                    "migrations[0].rename.old-name",
                    "must be an identifier: letters, digits and _, not starting with a digit",
                ),
            ],
            id="structure",
        ),
        pytest.param(
            [{"from": "1.x", "drop": ["a"]}] * 33,
            [("migrations", "must have at most 32 items")],
            id="at-most-32",
        ),
    ],
)
def test_manifest_migrations_are_refused_naming_the_field(listed, expected):
    found = problems(manifest(listed))

    assert [path for path, _ in found] == [path for path, _ in expected]
    for (_, message), (_, wanted) in zip(found, expected, strict=True):
        assert message.startswith(wanted), (message, wanted)


def test_without_a_parameter_schema_nothing_can_be_renamed_onto_or_set():
    found = problems(manifest([{"from": "1.x", "rename": {"a": "b"}, "set": {"c": 1}}], None))

    assert found == [
        ("migrations[0].rename.a", "renames onto b, not a parameter of this version"),
        ("migrations[0].set.c", "is not a parameter of this version"),
    ]


def test_a_broken_parameter_schema_is_reported_once_not_through_its_migrations():
    broken = {"type": "object", "properties": {"mode": {"type": "nonsense"}}}

    found = problems(manifest([{"from": "1.x", "set": {"mode": "x"}}], broken))

    assert [path for path, _ in found] == ["parameters.properties.mode.type"]


def test_free_form_names_may_be_renamed_onto():
    free = {"type": "object", "additionalProperties": {"type": "string"}}

    doc = validate_manifest(manifest([{"from": "1.x", "rename": {"a": "b"}}], free))

    assert doc.raw["migrations"] == [{"from": "1.x", "rename": {"a": "b"}}]
