"""The environment lease: one worker acts on an environment at a time, fenced by a counter.

Each new holder increments `fencing`; the token is stamped on every container
that holder creates, so leftovers of a holder that died are recognisable.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import cast

from sqlalchemy import CursorResult, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog.models import EnvironmentLease
from catalog.models.common import utcnow

LEASE_SECONDS = 20.0


class LeaseLost(Exception):
    """Another worker holds the environment now; stop touching it."""


def acquire(
    sessions: sessionmaker[Session], env_id: str, owner: str, *, seconds: float = LEASE_SECONDS
) -> int | None:
    """The new fencing token, or None when another live holder has the lease."""
    with sessions() as session:
        if session.get(EnvironmentLease, env_id) is None:
            session.add(EnvironmentLease(environment_id=env_id, fencing=0))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
        now = utcnow()
        result = session.execute(
            update(EnvironmentLease)
            .where(
                EnvironmentLease.environment_id == env_id,
                or_(
                    EnvironmentLease.owner.is_(None),
                    EnvironmentLease.expires_at < now,
                ),
            )
            .values(
                owner=owner,
                expires_at=now + timedelta(seconds=seconds),
                fencing=EnvironmentLease.fencing + 1,
            )
            .returning(EnvironmentLease.fencing)
        )
        fencing = result.scalar_one_or_none()
        session.commit()
        return fencing


def renew(
    sessions: sessionmaker[Session],
    env_id: str,
    owner: str,
    fencing: int,
    *,
    seconds: float = LEASE_SECONDS,
) -> bool:
    with sessions() as session:
        result = session.execute(
            update(EnvironmentLease)
            .where(
                EnvironmentLease.environment_id == env_id,
                EnvironmentLease.owner == owner,
                EnvironmentLease.fencing == fencing,
            )
            .values(expires_at=utcnow() + timedelta(seconds=seconds))
        )
        session.commit()
        return cast(CursorResult, result).rowcount == 1  # an UPDATE's result is a cursor's


def release(sessions: sessionmaker[Session], env_id: str, owner: str, fencing: int) -> None:
    with sessions() as session:
        session.execute(
            update(EnvironmentLease)
            .where(
                EnvironmentLease.environment_id == env_id,
                EnvironmentLease.owner == owner,
                EnvironmentLease.fencing == fencing,
            )
            .values(owner=None, expires_at=None)
        )
        session.commit()


class Heartbeat:
    """Renews a held lease in the background; `lost` is set once a renewal fails."""

    def __init__(
        self, sessions, env_id: str, owner: str, fencing: int, *, seconds: float = LEASE_SECONDS
    ) -> None:
        self.args = (sessions, env_id, owner, fencing)
        self.seconds = seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{env_id[:8]}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / 4):
            try:
                held = renew(*self.args, seconds=self.seconds)
            except Exception:  # the database is away: try again next beat
                continue
            if not held:
                self.lost.set()
                return

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLost("the environment lease was lost to another worker")
