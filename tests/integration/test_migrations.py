"""Alembic migrations create exactly what the models describe, on PostgreSQL and SQLite."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from catalog.migrate import upgrade
from catalog.models import Base

# Declared in a migration only: PostgreSQL's trigram index behind `q` searches.
MIGRATION_ONLY = {"ix_packages_search_trgm"}


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


def test_upgrading_a_sqlite_database_keeps_its_rows(tmp_path):
    """Batch migrations copy tables on SQLite; the copy must not cascade deletes."""
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    upgrade(url, "0004")
    now = "2026-11-27 00:00:00"
    rows = {
        "tenants": {"id": "t", "name": "acme", "created_at": now},
        "environments": {
            "id": "e", "tenant_id": "t", "name": "shop", "description": "", "settings": "{}",
            "status": "ready", "status_detail": "", "draft_version": 1, "last_revision": 1,
            "created_at": now, "updated_at": now,
        },
        "apps": {
            "id": "a", "environment_id": "e", "name": "web", "package": "org.acme.web",
            "parameters": "{}", "bindings": "{}", "created_at": now,
        },
        "deployments": {
            "id": "d", "environment_id": "e", "revision": 1, "status": "succeeded", "spec": "{}",
            "cancel_requested": 0, "attempts": 1, "error": "", "plan": "[]", "created_at": now,
        },
        "deployment_events": {
            "environment_id": "e", "revision": 1, "level": "info", "message": "ready",
            "created_at": now,
        },
    }  # fmt: skip
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            for table, row in rows.items():
                columns = ", ".join(row)
                values = ", ".join(f":{c}" for c in row)
                conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)

        upgrade(url)

        with engine.connect() as conn:
            counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in rows}
        assert counts == {table: 1 for table in rows}
        assert drift(url) == []
    finally:
        engine.dispose()
