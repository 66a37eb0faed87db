"""The tracker (`catalogctl tracker`): keeps every container record and status true, and repairs.

Process model, one tracker per engine:

- A reader thread follows the engine's container events for the catalog's label
  (`io.catalog.env`) and puts them on a bounded queue. When the queue is full the event is
  dropped and a full relist is flagged instead. After any disconnect or engine restart it
  reconnects with backoff, resubscribes with `since` = the last event's time, and flags a
  relist: the engine keeps only a small buffer and nothing across its own restart.
- The main thread handles events: each one only says "look at this container" (inspect,
  then record state, health, exit code, OOM, deaths; then the environment's status). It
  relists every TRACKER_RELIST_SECONDS and whenever flagged: every tracked environment's
  records are compared with one listing of the engine. Events trigger work; the relist is
  the truth.
- A small pool repairs environments (workers/tracker/repair.py) under their lease: strays removed,
  missing containers recreated, dead ones restarted once their backoff has passed. Timers
  bring a repair back when a restart falls due. One repair per environment at a time.

State transitions the tracker owns: container records of environments that are `ready`,
`degraded` or `deploy_failed` (the revision that serves); the environment status between
`ready` and `degraded`, never from or to any other status (`new`, `deploying`, `deleting`,
`deploy_failed` and `delete_failed` belong to the API, the deploy and the teardown).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from sqlalchemy import select

from catalog.config import Settings
from catalog.models import ContainerRecord, Environment
from catalog.models.common import utcnow
from catalog.models.environment import placed_on
from workers import metrics
from workers.engine import ENV_LABEL, ContainerSummary
from workers.engine.docker import connect
from workers.runtime import Runtime
from workers.tracker.lifecycle import (
    MISSING,
    RESTARTABLE,
    STICKY,
    RestartPolicy,
    environment_verdict,
)
from workers.tracker.prune import prune_images
from workers.tracker.reader import EventReader
from workers.tracker.records import (
    STATUS_OWNED,
    TRACKED,
    Settled,
    Specs,
    forget_gone,
    refresh_status,
    settle,
    tracked_revision,
)
from workers.tracker.repair import repair

log = logging.getLogger("catalog.tracker")

TICK_SECONDS = 0.1  # how often timers are looked at when no event comes
FIRST_PRUNE_SECONDS = 60.0
BUSY_RETRY_SECONDS = 1.0  # another holder has an environment's lease


class Tracker:
    def __init__(self, rt: Runtime, settings: Settings) -> None:
        self.rt = rt
        self.policy = RestartPolicy.from_settings(settings)
        self.specs = Specs()
        self.relist_seconds = float(settings.tracker_relist_seconds)
        self.prune_seconds = float(settings.prune_images_seconds)
        self.events: queue.Queue = queue.Queue(maxsize=max(1, int(settings.tracker_queue_size)))
        self._relist_needed = threading.Event()
        self._stopping = threading.Event()
        self.reader = EventReader(
            lambda: connect(settings.docker_url, ping=False),
            self.events,
            self._relist_needed.set,
            float(settings.tracker_reconnect_max_seconds),
        )
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, settings.tracker_repair_workers),
            thread_name_prefix="repair",
        )
        self._lock = threading.Lock()
        self._timers: dict[str, float] = {}  # env id -> monotonic time a repair is due
        self._inflight: set[str] = set()
        self._again: set[str] = set()
        self._failures: dict[str, int] = defaultdict(int)  # failed repairs in a row
        self._not_before: dict[str, float] = {}
        self._relist_failing = False

    # -- the main loop ---------------------------------------------------------------------

    def run(self) -> None:
        self.reader.start()
        next_relist = 0.0
        # The first pass soon after the start: a tracker restarted more often than the
        # interval would otherwise never prune.
        next_prune = time.monotonic() + min(self.prune_seconds, FIRST_PRUNE_SECONDS)
        pruning = None
        while not self._stopping.is_set():
            now = time.monotonic()
            if (
                self.prune_seconds > 0
                and now >= next_prune
                and not (pruning and pruning.is_alive())
            ):
                next_prune = now + self.prune_seconds
                # A thread of its own: a slow pass takes no repair slot, and none overlaps.
                pruning = threading.Thread(
                    target=self._guard, args=("image prune", prune_images, self.rt),
                    name="prune", daemon=True,
                )  # fmt: skip
                pruning.start()
            if self._relist_needed.is_set() or now >= next_relist:
                self._relist_needed.clear()
                dropped = self.reader.take_dropped()
                metrics.EVENTS_DROPPED.inc(dropped)
                if dropped:
                    log.warning("dropped %d engine event(s): the queue was full; relisting",
                                dropped)  # fmt: skip
                self._drain()
                ok = self._guard("relist", self.relist)
                next_relist = now + (self.relist_seconds if ok else min(self.relist_seconds, 1.0))
            self._run_timers()
            try:
                event = self.events.get(timeout=TICK_SECONDS)
            except queue.Empty:
                continue
            metrics.QUEUED_EVENTS.set(self.events.qsize())
            metrics.event_handled(event)
            self._guard("event", self.handle, event)
        self.reader.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        log.info("tracker stopped")

    def stop(self) -> None:
        self._stopping.set()
        self.reader.close()

    def _drain(self) -> None:
        """Queued events add nothing to a relist that starts now."""
        try:
            while True:
                self.events.get_nowait()
        except queue.Empty:
            pass

    def _guard(self, what: str, func, *args) -> bool:
        try:
            func(*args)
        except Exception as exc:
            if what == "relist":
                level = logging.DEBUG if self._relist_failing else logging.WARNING
                self._relist_failing = True
                log.log(level, "relist failed: %s", exc)
            else:
                log.warning("%s failed: %s", what, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            return False
        if what == "relist" and self._relist_failing:
            self._relist_failing = False
            log.info("relist works again")
        return True

    # -- events ----------------------------------------------------------------------------

    def handle(self, event: dict) -> None:
        actor = event.get("Actor") or {}
        container_id = actor.get("ID") or event.get("id")
        env_id = (actor.get("Attributes") or {}).get(ENV_LABEL)
        action = str(event.get("Action") or event.get("status") or "").split(":")[0]
        if not container_id:
            return
        if action == "destroy":
            found = forget_gone(self.rt, container_id)
            if found is not None:
                self.schedule(found, 0)
                refresh_status(self.rt, found, self.specs)
            elif env_id and self._tracked(env_id):
                self.schedule(env_id, 0)
            return
        settled = settle(self.rt, container_id, self.policy, oom=action == "oom")
        if settled is None:
            # No record: a stray, or a container a repair is still creating (it records it).
            if env_id and self._tracked(env_id):
                self.schedule(env_id, 0)
            return
        self._follow(settled)
        refresh_status(self.rt, settled.env_id, self.specs)

    def _tracked(self, env_id: str) -> bool:
        with self.rt.sessions() as session:
            return tracked_revision(session, env_id, self.rt.host_id) is not None

    def _follow(self, settled: Settled) -> None:
        if settled.state in RESTARTABLE:
            self._schedule_at(settled.env_id, settled.next_restart_at)

    def _schedule_at(self, env_id: str, when) -> None:
        delay = 0.0 if when is None else (when - utcnow()).total_seconds()
        self.schedule(env_id, max(0.0, delay))

    # -- the relist ------------------------------------------------------------------------

    def relist(self) -> None:
        """Compare every tracked environment's records with one listing of the engine."""
        started = time.monotonic()
        engine: dict[str | None, dict[str, ContainerSummary]] = defaultdict(dict)
        for summary in self.rt.engine.list_containers([ENV_LABEL]):
            engine[summary.labels.get(ENV_LABEL)][summary.id] = summary
        with self.rt.sessions() as session:
            environments = session.execute(
                select(
                    Environment.id,
                    Environment.status,
                    Environment.status_detail,
                    Environment.current_revision,
                ).where(
                    Environment.status.in_(TRACKED),
                    Environment.current_revision.is_not(None),
                    placed_on(self.rt.host_id),
                )
            ).all()
            rows = session.scalars(
                select(ContainerRecord)
                .join(Environment, Environment.id == ContainerRecord.environment_id)
                .where(Environment.status.in_(TRACKED), placed_on(self.rt.host_id))
            ).all()
            slots = {
                e.id: self.specs.slots(session, e.id, e.current_revision) for e in environments
            }
        records = defaultdict(list)
        for record in rows:
            records[record.environment_id].append(record)
        for env_id, status, detail, _revision in environments:
            self._relist_one(env_id, status, detail, slots[env_id], records[env_id], engine[env_id])
        took = time.monotonic() - started
        metrics.RELIST_DURATION.observe(took)
        log.debug("relisted %d environment(s), %d record(s) in %.3f s",
                  len(environments), len(rows), took)  # fmt: skip

    def _relist_one(
        self, env_id, status, detail, slots, records, seen: dict[str, ContainerSummary]
    ) -> None:
        repair_now, changed = False, False
        for record in records:
            summary = seen.get(record.id)
            if summary is None:
                repair_now = True
                if record.state != MISSING:
                    changed = forget_gone(self.rt, record.id) is not None or changed
            elif _differs(record, summary):
                settled = settle(self.rt, record.id, self.policy)
                changed = True
                if settled is not None:
                    self._follow(settled)
            elif record.state in RESTARTABLE:
                self._schedule_at(env_id, record.next_restart_at)
        covered = {(r.app, r.service) for r in records if r.state != MISSING}
        if set(seen) - {r.id for r in records} or {(a, s) for a, s, _ in slots} - covered:
            repair_now = True  # a stray, or a slot without a container
        if repair_now:
            self.schedule(env_id, 0)
        if status in STATUS_OWNED:
            verdict = environment_verdict(slots, records)
            if changed or (verdict.status and (verdict.status, verdict.detail) != (status, detail)):
                refresh_status(self.rt, env_id, self.specs)

    # -- repairs ---------------------------------------------------------------------------

    def schedule(self, env_id: str, delay: float) -> None:
        due = time.monotonic() + delay
        with self._lock:
            due = max(due, self._not_before.get(env_id, 0.0))
            if due < self._timers.get(env_id, float("inf")):
                self._timers[env_id] = due

    def _run_timers(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [env_id for env_id, at in self._timers.items() if at <= now]
            for env_id in due:
                del self._timers[env_id]
                if env_id in self._inflight:
                    self._again.add(env_id)  # runs once more when the current pass ends
                else:
                    self._inflight.add(env_id)
                    self._pool.submit(self._repair, env_id)

    def _repair(self, env_id: str) -> None:
        retry: float | None = None
        owner = f"tracker:{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        started = time.monotonic()
        try:
            outcome = repair(replace(self.rt, owner=owner), env_id, self.policy, self.specs)
            log.debug("repaired %s in %.3f s: %s", env_id, time.monotonic() - started, outcome)
        except Exception as exc:
            log.warning("repair of %s failed: %s", env_id, exc,
                        exc_info=log.isEnabledFor(logging.DEBUG))  # fmt: skip
            retry = self._failed(env_id)
        else:
            if outcome.failed:
                retry = self._failed(env_id)
            else:
                with self._lock:
                    self._failures.pop(env_id, None)
                    self._not_before.pop(env_id, None)
            if outcome.busy:
                retry = BUSY_RETRY_SECONDS
            elif outcome.next_due is not None:
                due = max(0.0, (outcome.next_due - utcnow()).total_seconds())
                retry = due if retry is None else min(retry, due)
        finally:
            with self._lock:
                self._inflight.discard(env_id)
                again = env_id in self._again
                self._again.discard(env_id)
            if again:
                self.schedule(env_id, 0)
            if retry is not None:
                self.schedule(env_id, retry)

    def _failed(self, env_id: str) -> float:
        """A repair failed again: the next one waits longer (the restart backoff's steps)."""
        with self._lock:
            self._failures[env_id] += 1
            delay = self.policy.delay(self._failures[env_id])
            self._not_before[env_id] = time.monotonic() + delay
        log.info("next repair of %s in %.1f s at the earliest", env_id, delay)
        return delay


def _health(status_text: str) -> str | None:
    """The health the engine's one-line status shows: `Up 3 s (healthy)` -> healthy."""
    for marker, health in (("(healthy)", "healthy"), ("(unhealthy)", "unhealthy"),
                           ("(health: starting)", "starting")):  # fmt: skip
        if marker in status_text:
            return health
    return None


def _differs(record: ContainerRecord, summary: ContainerSummary) -> bool:
    """Whether the engine's listing contradicts a record (then it is inspected)."""
    state = summary.state
    if record.state in STICKY and state in RESTARTABLE:
        return False
    if record.state != state:
        return True
    if state == "running" and record.started_at is None:
        return True  # recorded by a deploy, never inspected by the tracker yet
    return state == "running" and record.health != _health(summary.status)


def main() -> None:
    """Run until SIGTERM or SIGINT; waits for the engine and the database when they are away."""
    from workers.runtime import UnknownHost, host_id, runtime

    delay = 0.5
    while True:
        try:
            rt = runtime()
            rt = replace(rt, host_id=host_id(rt.sessions, rt.settings.host_name))
            break
        except UnknownHost as exc:
            raise SystemExit(str(exc)) from None
        except Exception as exc:
            log.warning("waiting for the engine and the database: %s", exc)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    tracker = Tracker(rt, rt.settings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: tracker.stop())
    log.info("tracker started (relist every %.1f s, queue %d, crashloop after %d deaths in %g s)",
             tracker.relist_seconds, tracker.events.maxsize, tracker.policy.deaths,
             tracker.policy.window)  # fmt: skip
    tracker.run()
