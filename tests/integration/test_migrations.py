"""Alembic migrations create exactly what the models describe, on PostgreSQL and SQLite."""

from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from catalog.migrate import upgrade
from catalog.models import Base
from catalog.secretbox import SecretBox, open_all
from tests.conftest import TEST_SECRET_KEY

SECRET = "a password from before encryption"

# Declared in a migration only: PostgreSQL's trigram index of the search lexicon.
MIGRATION_ONLY = {"ix_search_terms_trgm"}


def _include(obj, name, type_, reflected, compare_to) -> bool:
    return name not in MIGRATION_ONLY


def drift(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": _include}
            )
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_postgresql_schema_matches_the_models(database_url):
    assert drift(database_url) == []


def test_sqlite_schema_matches_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    upgrade(url)
    assert drift(url) == []


def test_upgrading_twice_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    upgrade(url)
    upgrade(url)
    assert drift(url) == []


NOW = "2026-11-27 00:00:00"


def older_rows(parameters: str = "{}", spec: str = "{}") -> dict[str, dict]:
    """A tenant's environment with an app, a deployment and an event, as 0004 stores them."""
    return {
        "tenants": {"id": "t", "name": "acme", "created_at": NOW},
        "environments": {
            "id": "e", "tenant_id": "t", "name": "shop", "description": "", "settings": "{}",
            "status": "ready", "status_detail": "", "draft_version": 1, "last_revision": 1,
            "created_at": NOW, "updated_at": NOW,
        },
        "apps": {
            "id": "a", "environment_id": "e", "name": "web", "package": "org.acme.web",
            "parameters": parameters, "bindings": "{}", "created_at": NOW,
        },
        "deployments": {
            "id": "d", "environment_id": "e", "revision": 1, "status": "succeeded", "spec": spec,
            "cancel_requested": 0, "attempts": 1, "error": "", "plan": "[]", "created_at": NOW,
        },
        "deployment_events": {
            "environment_id": "e", "revision": 1, "level": "info", "message": "ready",
            "created_at": NOW,
        },
    }  # fmt: skip


def insert(engine, rows: dict[str, dict]) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        for table, row in rows.items():
            columns = ", ".join(row)
            values = ", ".join(f":{c}" for c in row)
            conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)


def test_upgrading_a_sqlite_database_keeps_its_rows(tmp_path):
    """Batch migrations copy tables on SQLite; the copy must not cascade deletes."""
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    upgrade(url, "0004")
    rows = older_rows()
    engine = create_engine(url)
    try:
        insert(engine, rows)

        upgrade(url)

        with engine.connect() as conn:
            counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in rows}
        assert counts == {table: 1 for table in rows}
        assert drift(url) == []
    finally:
        engine.dispose()


def test_migration_0006_seals_the_secrets_an_older_catalog_stored_in_clear(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    upgrade(url, "0005")
    manifest = {
        "parameters": {
            "type": "object",
            "properties": {
                "password": {"type": "string", "x-secret": True},
                "size": {"type": "integer"},
            },
        }
    }
    clear = {"password": SECRET, "size": 1}
    spec = {
        "apps": [
            {"name": "web", "package": "org.acme.web", "manifest": manifest, "parameters": clear}
        ]
    }
    package = {
        "packages": {
            "id": "p", "name": "org.acme.web", "tenant_id": "t", "visibility": "private",
            "enabled": 1, "type": "application", "title": "", "description": "", "tags": "[]",
            "search_text": "", "tag_index": "", "created_at": NOW, "updated_at": NOW,
        },
        "package_versions": {
            "id": "v", "package_id": "p", "version": "1.0.0", "digest": "d", "size": 1,
            "manifest": json.dumps(manifest), "yanked": 0, "created_at": NOW,
        },
    }  # fmt: skip
    rows = older_rows(json.dumps(clear), json.dumps(spec))
    engine = create_engine(url)
    try:
        insert(engine, {"tenants": rows.pop("tenants"), **package, **rows})
        monkeypatch.setenv("CATALOG_SECRET_KEY", TEST_SECRET_KEY)

        upgrade(url)

        with engine.connect() as conn:
            parameters = json.loads(conn.execute(text("SELECT parameters FROM apps")).scalar())
            snapshot = conn.execute(text("SELECT spec FROM deployments")).scalar()
    finally:
        engine.dispose()
    assert SECRET not in json.dumps(parameters) and SECRET not in snapshot
    assert parameters["size"] == 1
    assert open_all(parameters, SecretBox([TEST_SECRET_KEY])) == clear
    assert open_all(json.loads(snapshot), SecretBox([TEST_SECRET_KEY])) == spec
