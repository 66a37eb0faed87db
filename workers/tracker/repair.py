"""Repairing one environment under its lease: what runs becomes what its current revision asks.

A stray container carrying the environment's label but no record (unknown labels, another
revision, a stale fencing token, a second container for a slot) is removed; a recorded
container the engine lost is recreated from the current revision through the executor's own
start path (render, plan, start in dependency order, wait ready); a dead one is started again
once its backoff has passed, unless it is in a crash loop. Holding the lease keeps a deploy or
a teardown from acting at the same time; when another holder has it, the repair waits.
"""

from __future__ import annotations

import logging
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from catalog.models import ContainerRecord, Deployment, Environment
from catalog.models.common import utcnow
from catalog.snapshot import DeploymentSnapshot
from packages.secrets import redact
from workers import lease
from workers.deploy.execution import Execution
from workers.engine import ObservedContainer
from workers.events import EventLog
from workers.runtime import Runtime, lease_seconds
from workers.tracker.lifecycle import (
    MISSING,
    RESTARTABLE,
    RestartPolicy,
    Slot,
    expected_slots,
    observe,
)
from workers.tracker.records import TRACKED, Specs, refresh_status, settle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    busy: bool = False  # another holder has the lease: try again shortly
    next_due: datetime | None = None  # the next restart waiting for its backoff
    failed: bool = False  # recreating a missing container failed: try again after a backoff


@dataclass(frozen=True)
class _Target:
    revision: int
    spec: DeploymentSnapshot
    name: str
    tenant_id: str


def repair(rt: Runtime, env_id: str, policy: RestartPolicy, specs: Specs) -> Outcome:
    """One pass over one environment; idempotent, so running it too often costs nothing."""
    seconds = lease_seconds(rt)
    fencing = lease.acquire(rt.sessions, env_id, rt.owner, seconds=seconds)
    if fencing is None:
        return Outcome(busy=True)
    try:
        with lease.Heartbeat(rt.sessions, env_id, rt.owner, fencing, seconds=seconds) as beat:
            return _Repair(rt, env_id, fencing, beat, policy, specs).run()
    finally:
        lease.release(rt.sessions, env_id, rt.owner, fencing)


class _Repair:
    def __init__(self, rt: Runtime, env_id: str, fencing: int, heartbeat, policy, specs) -> None:
        self.rt, self.env_id, self.fencing, self.heartbeat = rt, env_id, fencing, heartbeat
        self.policy, self.specs = policy, specs

    def run(self) -> Outcome:
        target = self._target()
        if target is None:
            return Outcome()
        events = EventLog(self.rt.sessions, self.env_id, target.revision)
        observed = {c.id: c for c in self.rt.engine.observe(self.env_id)}
        records = self._records()
        self._drop_gone(records, observed, events)
        slots = expected_slots(target.spec)
        legit = self._remove_strays(records, observed, slots, events)
        next_due = self._restart_dead(legit.values())
        missing = slots - legit.keys()
        failed = bool(missing) and not self._recreate(target, missing, events)
        refresh_status(self.rt, self.env_id, self.specs)
        return Outcome(next_due=next_due, failed=failed)

    def _target(self) -> _Target | None:
        with self.rt.sessions() as session:
            environment = session.get(Environment, self.env_id)
            if environment is None or environment.status not in TRACKED:
                return None
            if environment.current_revision is None:
                return None
            spec = session.scalar(
                select(Deployment.spec).where(
                    Deployment.environment_id == self.env_id,
                    Deployment.revision == environment.current_revision,
                )
            )
            if spec is None:
                return None
            return _Target(
                environment.current_revision, spec, environment.name, environment.tenant_id
            )

    def _records(self) -> dict[str, tuple[str, str, str]]:
        """id -> (app, service, state) of the environment's records."""
        with self.rt.sessions() as session:
            rows = session.execute(
                select(
                    ContainerRecord.id,
                    ContainerRecord.app,
                    ContainerRecord.service,
                    ContainerRecord.state,
                ).where(ContainerRecord.environment_id == self.env_id)
            ).all()
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    def _drop_gone(self, records: dict, observed: dict, events: EventLog) -> None:
        gone = [cid for cid in records if cid not in observed]
        if not gone:
            return
        with self.rt.sessions() as session:
            session.execute(delete(ContainerRecord).where(ContainerRecord.id.in_(gone)))
            session.commit()
        for cid in gone:
            app, service, state = records.pop(cid)
            if state != MISSING:
                events.emit(f"container {cid[:12]} is gone from the engine", level="warning",
                            app=app, service=service)  # fmt: skip

    def _remove_strays(
        self, records: dict, observed: dict[str, ObservedContainer], slots, events: EventLog
    ) -> dict[Slot, str]:
        """Remove what does not belong; the recorded container of each expected slot."""
        legit: dict[Slot, str] = {}
        strays: list[tuple[ObservedContainer, str]] = []
        # The recorded, running and newest container first claims its slot.
        ordered = sorted(
            observed.values(),
            key=lambda c: (c.id not in records, not c.running, -(c.revision or 0), c.id),
        )
        for container in ordered:
            slot = _slot(container)
            if slot is None:
                strays.append((container, "unknown labels"))
            elif container.id not in records:
                strays.append((container, _stray_reason(container, slot, slots, legit)))
            elif slot not in slots:
                strays.append((container, "not part of the current revision"))
            elif slot in legit:
                strays.append((container, "a second container for its slot"))
            else:
                legit[slot] = container.id
        for container, reason in strays:
            self.heartbeat.check()
            if self.rt.engine.inspect(container.id) is None:
                continue  # the engine's listing can lag a removal just done
            self.rt.engine.remove(container.id)
            events.emit(f"removed stray container {container.name}: {reason}", level="warning",
                        app=container.app, service=container.service)  # fmt: skip
        stale = [c.id for c, _ in strays if c.id in records]
        if stale:
            with self.rt.sessions() as session:
                session.execute(delete(ContainerRecord).where(ContainerRecord.id.in_(stale)))
                session.commit()
        return legit

    def _restart_dead(self, container_ids) -> datetime | None:
        """Observe every recorded container; start the dead ones whose backoff has passed."""
        next_due = None
        for container_id in container_ids:
            self.heartbeat.check()
            settled = settle(self.rt, container_id, self.policy, may_restart=True)
            if settled is None or settled.state not in RESTARTABLE:
                continue
            due = settled.next_restart_at
            if due is not None and (next_due is None or due < next_due):
                next_due = due
        return next_due

    def _recreate(self, target: _Target, missing: AbstractSet[Slot], events: EventLog) -> bool:
        """Start the missing slots through the executor; False when one failed."""
        names = ", ".join(f"{a}/{s}" for a, s, _ in sorted(missing))
        events.emit(f"recreating missing container(s): {names}", level="warning")
        execution = Execution(self.rt, self.env_id, target.revision, self.fencing, self.heartbeat)
        try:
            execution.start_missing(target.spec, target.name, target.tenant_id, missing)
        except lease.LeaseLost:
            raise
        except Exception as exc:  # what was created is recorded all the same
            message = redact(str(exc), execution.events.hidden)  # what the engine echoed
            log.warning("repair of %s: %s", self.env_id, message)
            events.emit(f"recreating {names} failed: {message}", level="error")
            return False
        finally:
            self._record_new(missing, getattr(execution, "log_share", 0))
        return True

    def _record_new(self, missing: AbstractSet[Slot], log_share: int) -> None:
        """Records for the containers this pass created (its fencing token on their labels)."""
        created = [
            c
            for c in self.rt.engine.observe(self.env_id)
            if c.fencing == self.fencing and _slot(c) in missing
        ]
        with self.rt.sessions() as session:
            for container in created:
                if session.get(ContainerRecord, container.id) is not None:
                    continue
                record = ContainerRecord(
                    id=container.id,
                    environment_id=self.env_id,
                    revision=container.revision or 0,
                    app=container.app,
                    service=container.service,
                    name=container.name,
                    config_hash=container.config_hash or "",
                    state="created",
                    deaths=[],
                    restart_count=0,
                    oom_killed=False,
                    log_bytes=log_share,
                )
                info = self.rt.engine.inspect(container.id)
                if info is not None:
                    observe(record, info, self.policy)
                record.updated_at = utcnow()
                session.add(record)
            session.commit()


def _slot(container: ObservedContainer) -> Slot | None:
    if not container.app or not container.service or container.replica is None:
        return None
    return (container.app, container.service, container.replica)


def _stray_reason(container: ObservedContainer, slot: Slot, slots, legit) -> str:
    if slot not in slots:
        return f"not part of the current revision (revision {container.revision})"
    if slot in legit:
        return f"a second container for its slot (fencing {container.fencing})"
    return f"not recorded (revision {container.revision}, fencing {container.fencing})"
