"""Container records and environment statuses as the tracker keeps them true.

Each record changes in its own short transaction holding the record's row lock while the
engine is asked (inspect, start), so the event handler and a repair never interleave on one
container. An environment's status is changed only from `ready`/`degraded` and only for its
current revision (a conditional UPDATE), so a deploy or a deletion always wins.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from catalog.models import ContainerRecord, Deployment, Environment
from catalog.models.common import utcnow
from catalog.models.environment import EnvironmentStatus, placed_on
from catalog.services.webhooks import emit
from workers import webhooks
from workers.engine import EngineError
from workers.events import EventLog
from workers.runtime import Runtime
from workers.tracker.lifecycle import (
    Change,
    RestartPolicy,
    Slot,
    environment_verdict,
    expected_slots,
    mark_missing,
    observe,
    restart_due,
)

# Environments whose current revision the tracker keeps running and recorded. A failed deploy
# rolled back (`deploy_failed`) leaves the previous revision serving: it is kept running too.
TRACKED = (EnvironmentStatus.READY, EnvironmentStatus.DEGRADED, EnvironmentStatus.DEPLOY_FAILED)
# The statuses the tracker moves an environment between; every other one belongs to the
# deploy, the teardown or the API.
STATUS_OWNED = (EnvironmentStatus.READY, EnvironmentStatus.DEGRADED)


class Specs:
    """The slots each (environment, revision) asks for; snapshots never change, so read once."""

    def __init__(self, limit: int = 10_000) -> None:
        self._slots: dict[tuple[str, int], frozenset[Slot]] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def slots(self, session: Session, env_id: str, revision: int) -> frozenset[Slot]:
        key = (env_id, revision)
        with self._lock:
            found = self._slots.get(key)
        if found is None:
            spec = session.scalar(
                select(Deployment.spec).where(
                    Deployment.environment_id == env_id, Deployment.revision == revision
                )
            )
            found = expected_slots(spec or {})
            with self._lock:
                if len(self._slots) >= self._limit:
                    self._slots.clear()
                self._slots[key] = found
        return found


@dataclass(frozen=True)
class Settled:
    """A record after an observation: what the caller schedules next."""

    env_id: str
    state: str
    next_restart_at: datetime | None
    change: Change


def settle(
    rt: Runtime,
    container_id: str,
    policy: RestartPolicy,
    *,
    oom: bool = False,
    may_restart: bool = False,
) -> Settled | None:
    """Record what the engine shows of one recorded container; start it again when due.

    None when the container has no record in a tracked environment. Restarting
    (`may_restart`) is for callers holding the environment's lease.
    """
    notes: list[tuple[str, str]] = []  # (level, message) for the environment's events
    with rt.sessions() as session:
        found = _tracked_record(session, rt, container_id)
        if found is None:
            return None
        record, revision = found
        had_oom, had_health = record.oom_killed, record.health
        info = rt.engine.inspect(container_id)
        told: list[str] = []
        if info is None:
            change = Change()
            if mark_missing(record):
                notes.append(("warning", f"{record.name} is gone from the engine"))
        else:
            change = observe(record, info, policy, oom=oom)
            notes += _death_notes(record, change, policy, had_oom)
            told = _tell(session, record, change, had_health, revision)
            if may_restart and restart_due(record, utcnow()):
                notes.append(_restart(rt, record, policy))
        record.updated_at = utcnow()
        settled = Settled(record.environment_id, record.state, record.next_restart_at, change)
        app, service = record.app, record.service
        session.commit()
    webhooks.send(told)
    events = EventLog(rt.sessions, settled.env_id, revision)
    for level, message in notes:
        events.emit(message, level=level, app=app, service=service)
    return settled


def _tell(
    session: Session, record: ContainerRecord, change: Change, had_health, revision
) -> list[str]:
    """Webhook deliveries of what just went wrong with the container: it crash-loops (the
    tracker gave up restarting it) or its healthcheck turned unhealthy."""
    if change.gave_up:
        event = "app.crashloop"
    elif record.health == "unhealthy" and had_health != "unhealthy":
        event = "app.unhealthy"
    else:
        return []
    environment = session.get(Environment, record.environment_id)
    if environment is None:
        return []
    data = {
        "environment": environment.name,
        "environment_id": environment.id,
        "revision": revision,
        "app": record.app,
        "service": record.service,
        "container": record.name,
        "exit_code": record.exit_code,
        "restarts": record.restart_count,
    }
    return emit(session, environment.tenant_id, event, data)


def _tracked_record(
    session: Session, rt: Runtime, container_id: str
) -> tuple[ContainerRecord, int | None] | None:
    """The record of `container_id`, locked, and its environment's current revision; None
    unless it is on this tracker's host in a tracked environment."""
    found = session.execute(
        select(ContainerRecord, Environment.status, Environment.current_revision)
        .join(Environment, Environment.id == ContainerRecord.environment_id)
        .where(ContainerRecord.id == container_id, placed_on(rt.host_id))
        .with_for_update(of=ContainerRecord)
    ).first()
    if found is None or found[1] not in TRACKED:
        return None
    return found[0], found[2]


def _death_notes(record, change: Change, policy: RestartPolicy, had_oom: bool) -> list:
    cause = f"exit code {record.exit_code}" + (", out of memory" if record.oom_killed else "")
    if change.gave_up:
        deaths = f"{change.recent_deaths} times within {policy.window:g} s"
        return [("error", f"{record.name} died {deaths} ({cause}): crashloop, not restarted")]
    if change.died:
        delay = (record.next_restart_at - record.finished_at).total_seconds()
        return [("warning", f"{record.name} died ({cause}); restarting in {delay:.1f} s")]
    if record.oom_killed and not had_oom and record.state != "running":
        return [("warning", f"{record.name} was killed: out of memory")]
    return []


def _restart(rt: Runtime, record: ContainerRecord, policy: RestartPolicy) -> tuple[str, str]:
    try:
        rt.engine.start(record.id)
    except EngineError as exc:
        # Tried again after the longest backoff; a container that cannot start is not hot-looped.
        record.next_restart_at = utcnow() + timedelta(seconds=policy.backoff_max)
        return "error", f"could not restart {record.name}: {exc}"
    record.restart_count += 1
    info = rt.engine.inspect(record.id)
    if info is not None:
        observe(record, info, policy)
    return "info", f"{record.name} restarted (restart {record.restart_count})"


def forget_gone(rt: Runtime, container_id: str) -> str | None:
    """The engine destroyed a recorded container: mark it missing; its environment's id."""
    with rt.sessions() as session:
        found = _tracked_record(session, rt, container_id)
        if found is None:
            return None
        record, revision = found
        news = mark_missing(record)
        record.updated_at = utcnow()
        env_id, name, app, service = record.environment_id, record.name, record.app, record.service
        session.commit()
    if news:
        EventLog(rt.sessions, env_id, revision).emit(
            f"{name} is gone from the engine", level="warning", app=app, service=service
        )
    return env_id


def tracked_revision(session: Session, env_id: str, host_id: str | None) -> int | None:
    """The current revision of a tracked environment placed on the host, else None."""
    found = session.execute(
        select(Environment.status, Environment.current_revision).where(
            Environment.id == env_id, placed_on(host_id)
        )
    ).first()
    if found is None or found[0] not in TRACKED:
        return None
    return found[1]


def refresh_status(rt: Runtime, env_id: str, specs: Specs) -> str | None:
    """Set `ready` or `degraded` from the records; the status now (None: not the tracker's).

    Compare-and-set on the status read, so two threads never both announce one change.
    """
    for _attempt in range(3):
        with rt.sessions() as session:
            environment = session.get(Environment, env_id)
            if environment is None or environment.status not in STATUS_OWNED:
                return None
            revision, before = environment.current_revision, environment.status
            before_detail = environment.status_detail
            if revision is None:
                return None
            records = session.scalars(
                select(ContainerRecord).where(ContainerRecord.environment_id == env_id)
            ).all()
            verdict = environment_verdict(specs.slots(session, env_id, revision), records)
            if verdict.status is None or (verdict.status, verdict.detail) == (
                before,
                before_detail,
            ):
                return before
            changed = cast(
                CursorResult,
                session.execute(
                    update(Environment)
                    .where(
                        Environment.id == env_id,
                        Environment.status == before,
                        Environment.status_detail == before_detail,
                        Environment.current_revision == revision,
                    )
                    .values(status=verdict.status, status_detail=verdict.detail)
                    .execution_options(synchronize_session=False)
                ),
            ).rowcount  # an UPDATE's result is a cursor's
            session.commit()
        if changed:
            break
    else:
        return None
    if verdict.status != before:
        message = (
            f"environment degraded: {verdict.detail}"
            if verdict.status == EnvironmentStatus.DEGRADED
            else "environment ready again: every app runs"
        )
        level = "warning" if verdict.status == EnvironmentStatus.DEGRADED else "info"
        EventLog(rt.sessions, env_id, revision).emit(message, level=level)
    return verdict.status
