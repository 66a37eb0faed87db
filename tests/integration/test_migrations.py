"""Alembic migrations create exactly what the models describe, on PostgreSQL and SQLite."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

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
