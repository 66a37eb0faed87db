"""`catalogctl app update` prints what a version change's parameter migrations did."""

from __future__ import annotations

import json
from typing import Any

import pytest

from catalogctl.commands import app as app_commands
from catalogctl.main import main

CURRENT = {"name": "web", "version": "1.0.0", "parameters": {"db_host": "db"}, "bindings": {}}
MIGRATED = ["migrations[0]: rename db_host -> database_host", "migrations[0]: set mode"]


class FakeClient:
    """Answers the GET of the app and its PATCH; keeps what was sent."""

    def __init__(self, migrated: list[str]) -> None:
        self.migrated = migrated
        self.sent: list[tuple[str, str, Any, dict]] = []

    def json_with_etag(self, method: str, path: str, **_: Any) -> tuple[dict, str]:
        return CURRENT, '"3"'

    def json(self, method: str, path: str, *, json: Any = None, headers: Any = None) -> dict:
        self.sent.append((method, path, json, headers))
        return {**CURRENT, "version": "2.0.0", "migrated": self.migrated}


@pytest.fixture
def client(monkeypatch, tmp_path):
    monkeypatch.setenv("CATALOGCTL_CONFIG", str(tmp_path / "catalogctl.yaml"))

    def install(migrated: list[str]) -> FakeClient:
        fake = FakeClient(migrated)
        monkeypatch.setattr(app_commands, "api", lambda: fake)
        return fake

    return install


def test_a_version_change_prints_each_migration_line(client, capsys):
    fake = client(MIGRATED)

    code = main(["app", "update", "shop", "web", "--version", "2.0.0"])

    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "updated web in shop; deploy to apply: catalogctl deploy shop",
        "  migrated: migrations[0]: rename db_host -> database_host",
        "  migrated: migrations[0]: set mode",
    ]
    assert fake.sent == [
        ("PATCH", "/environments/shop/apps/web", {"version": "2.0.0"}, {"If-Match": '"3"'})
    ]


def test_without_migrations_one_line_and_json_keeps_the_field(client, capsys):
    client([])

    assert main(["app", "update", "shop", "web", "--version", "2.0.0"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "updated web in shop; deploy to apply: catalogctl deploy shop"
    ]

    client(MIGRATED)
    assert main(["app", "update", "shop", "web", "--version", "2.0.0", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["migrated"] == MIGRATED
