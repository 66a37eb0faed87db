"""Alembic environment: migrations run against the URL the caller configured."""

from __future__ import annotations

from alembic import context

from catalog.db import make_engine
from catalog.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        broken_before = _foreign_keys_off(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    try:
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            broken = set(connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall())
            if broken - broken_before:
                raise RuntimeError(f"the migration broke foreign keys: {sorted(broken)[:5]}")
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def _foreign_keys_off(connection) -> set:
    """SQLite: foreign keys off for the migrations (a batch migration copies a table and
    drops the old one, and with them on the drop would cascade to every row referring to
    it); the rows that already broke one, so that only new breakage is reported."""
    if connection.in_transaction():  # PRAGMA foreign_keys is ignored inside one
        raise RuntimeError("SQLite migrations need a connection outside a transaction")
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if connection.exec_driver_sql("PRAGMA foreign_keys").scalar() != 0:
        raise RuntimeError("cannot turn SQLite's foreign keys off for the migrations")
    broken = set(connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall())
    connection.commit()
    return broken


run_migrations_online()
