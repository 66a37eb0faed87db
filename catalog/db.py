"""Database engine and sessions; the same code runs on PostgreSQL and SQLite."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    """Declarative base of every model."""


def make_engine(url: str, pool_size: int = 10, *, autocommit: bool = False) -> Engine:
    """An engine; `autocommit` ones run each statement alone (no BEGIN and ROLLBACK around).

    Autocommit is a setting of the whole engine, so its own pool: switching a pooled
    connection back and forth costs a statement each way on PostgreSQL.
    """
    options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **options
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if not autocommit:
        return create_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, **options
        )
    # Reads are the API's hot path: a ping on every checkout was a third of their round trips.
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, **options)
    event.listen(engine, "checkin", _mark_idle)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A pooled connection idle this long is pinged before use, so one the server dropped
# meanwhile (a restart, an idle timeout) is replaced rather than handed out. One in steady
# use is not: if the server restarts under load, the reads then in flight fail once (503)
# and the pool replaces every connection it holds.
PING_IDLE_SECONDS = 2.0


def _mark_idle(_dbapi_connection, record) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_IDLE_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
    except Exception:  # the pool discards this connection and checks out another
        raise DisconnectionError() from None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the API read while a worker writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_sessionmaker(engine: Engine, secrets: Any = None) -> sessionmaker[Session]:
    """Sessions of `engine`; `secrets` (a catalog.secretbox.SecretBox) seals and opens the
    secret parameters its services store and read."""
    return sessionmaker(bind=engine, expire_on_commit=False, info={"secrets": secrets})


# The server no longer has the statement (DISCARD ALL), already has it, or a migration
# changed the columns it returns: the connection's record of what it prepared is wrong.
_STALE_PREPARED = frozenset({"26000", "42P05", "0A000"})


class PlannedOnce:
    """A hot read statement that PostgreSQL plans once per connection, not on every run.

    Statements arrive from SQLAlchemy as text, so PostgreSQL parses and plans each one
    anew; for the API's listings that planning took as long as running them. Here each
    connection PREPAREs the statement on first use and EXECUTEs it afterwards, and the
    server keeps its plans. Only for statements whose best plan does not depend on the
    values (PostgreSQL still re-plans while a generic plan would cost more). Other
    databases run the statement as it is.
    """

    _dialect = None  # PostgreSQL with $n placeholders, which PREPARE takes

    def __init__(self, name: str, statement) -> None:
        self.name = name
        self.statement = statement
        # (PREPARE text, EXECUTE text, parameter names in $n order, constant values)
        self._sql: tuple[str, str, tuple[str, ...], dict] | None = None

    def rows(self, connection, values: dict) -> list[tuple]:
        """The statement's rows (tuples, in its column order), run on `connection` (in a
        transaction or not)."""
        if connection.dialect.driver != "psycopg2":  # it fills EXECUTE's values in itself
            return [tuple(row) for row in connection.execute(self.statement, values)]
        prepare, execute, order, constants = self._compiled(connection)
        prepared = connection.info.setdefault("prepared", set())  # lives with the connection
        given = {**constants, **values}
        parameters = tuple(given[key] for key in order)
        # On the driver's own cursor: for these short reads SQLAlchemy's execution and result
        # objects cost more CPU than the statement. Its error handling is kept: a driver
        # error comes out as SQLAlchemy's, with the connection invalidated when it is lost.
        dbapi_connection = connection.connection.dbapi_connection
        statement = prepare  # the one that failed, if one does
        try:
            with dbapi_connection.cursor() as cursor:
                if self.name not in prepared:
                    cursor.execute(prepare)
                    prepared.add(self.name)
                statement = execute
                cursor.execute(execute, parameters)
                return cursor.fetchall()
        except connection.dialect.loaded_dbapi.Error as exc:
            lost = connection.dialect.is_disconnect(exc, dbapi_connection, None)
            # Lost, or the server no longer has the statement (DISCARD ALL), already has
            # it, or a migration changed its columns: this fails once, and a new connection
            # prepares the statement afresh.
            if lost or getattr(exc, "pgcode", None) in _STALE_PREPARED:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                statement,
                parameters,
                exc,
                connection.dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=connection.dialect,
            ) from exc

    def _compiled(self, connection) -> tuple[str, str, tuple[str, ...], dict]:
        if self._sql is None:
            from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2

            if PlannedOnce._dialect is None:
                dialect = PGDialect_psycopg2(paramstyle="numeric_dollar")
                dialect.initialize(connection)  # learns the server's quoting of literals
                PlannedOnce._dialect = dialect
            compiled = self.statement.compile(dialect=PlannedOnce._dialect)
            order = tuple(dict.fromkeys(compiled.positiontup))
            sql = str(compiled)
            # What EXECUTE and psycopg2 could not take: no values, a literal %, IN (...).
            if not order or "%" in sql or "POSTCOMPILE" in sql:
                raise ValueError(f"{self.name} cannot be prepared: {sql}")
            # The values written into the statement itself ("public", the separator...).
            constants = {
                key: bind.effective_value
                for key, bind in compiled.binds.items()
                if not bind.required
            }
            placeholders = ", ".join(["%s"] * len(order))
            self._sql = (
                f"PREPARE {self.name} AS {sql}",
                f"EXECUTE {self.name} ({placeholders})",
                order,
                constants,
            )
        return self._sql
