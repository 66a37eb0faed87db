"""What the tracker concludes from the engine: container records, restarts, crash loops, status.

Pure rules on plain values (an inspect document, a record, the clock), unit-tested without
Docker or a database (tests/unit/test_lifecycle.py). A death is identified by the engine's
`FinishedAt`, so seeing it twice (an event and a relist) counts it once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, overload

from catalog.config import Settings
from catalog.models.deployment import DeploymentStatus
from catalog.models.environment import AppStatus, EnvironmentStatus
from catalog.services.environment_rules import app_status

Slot = tuple[str, str, int]
"""(app, service, replica)"""

# Record states the tracker writes besides the engine's own (created, running, exited, ...).
CRASHLOOP = "crashloop"  # died too often: not restarted until a deploy or an action
MISSING = "missing"  # the engine no longer has the container; the repair recreates the slot
STOPPED = "stopped"  # stopped by a user's action (workers/actions.py): left down, no death
# Kept while the container is down: only a new run (running again) ends them.
STICKY = frozenset({CRASHLOOP, STOPPED})

# Engine states in which the tracker starts the container again (after its backoff).
RESTARTABLE = frozenset({"created", "exited", "dead"})
# App statuses that make an environment `degraded`.
DEGRADED_APP = frozenset(
    {AppStatus.UNHEALTHY, AppStatus.CRASHLOOP, AppStatus.FAILED, AppStatus.STOPPED}
)
# App statuses with which an environment is `ready` again.
GOOD_APP = frozenset({AppStatus.RUNNING, AppStatus.HEALTHY})
_MAX_DEATHS_KEPT = 50


@dataclass(frozen=True)
class RestartPolicy:
    """Restart with exponential backoff; `deaths` deaths within `window` seconds: crashloop."""

    deaths: int = 5
    window: float = 60.0
    backoff: float = 1.0
    backoff_max: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RestartPolicy:
        return cls(
            deaths=max(1, int(settings.crashloop_deaths)),
            window=float(settings.crashloop_window_seconds),
            backoff=float(settings.restart_backoff_seconds),
            backoff_max=float(settings.restart_backoff_max_seconds),
        )

    def delay(self, recent_deaths: int) -> float:
        """Seconds to wait before restarting after the n-th recent death: 1, 2, 4, ... capped."""
        exponent = min(max(recent_deaths - 1, 0), 30)
        return min(self.backoff * 2**exponent, self.backoff_max)


class Record(Protocol):
    """The fields of a ContainerRecord the rules read and write."""

    state: str
    health: str | None
    exit_code: int | None
    oom_killed: bool
    deaths: list
    restart_count: int
    next_restart_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Change:
    """What an observation changed: a new death, and whether it was the one too many."""

    died: bool = False
    gave_up: bool = False
    started: bool = False
    recent_deaths: int = 0


_ENGINE_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def engine_time(text: str | None) -> datetime | None:
    """An engine timestamp (RFC 3339 with nanoseconds) as a UTC datetime; None for its zero."""
    match = _ENGINE_TIME.match(text or "")
    if match is None or match.group(1).startswith("0001-"):
        return None
    seconds, fraction, zone = match.groups()
    value = datetime.fromisoformat(
        seconds + f".{(fraction or '')[:6]:0<6}" + ("+00:00" if zone in (None, "Z") else zone)
    )
    return value.astimezone(UTC)


def _epoch(value: datetime) -> float:
    return round(value.timestamp(), 6)


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: datetime | None) -> datetime | None:
    """A database timestamp with its zone: SQLite hands back naive datetimes; they are UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def observe(
    record: Record, info: Mapping[str, Any], policy: RestartPolicy, *, oom: bool = False
) -> Change:
    """Bring `record` in line with an inspect document of its container.

    `oom`: the engine sent an `oom` event for the container (some engines never set
    State.OOMKilled when the event comes after the exit). A new death is counted once;
    the restart is scheduled after the backoff, or the record turns `crashloop`.
    """
    state = info.get("State") or {}
    status = state.get("Status") or ("running" if state.get("Running") else "exited")
    started = engine_time(state.get("StartedAt"))
    finished = engine_time(state.get("FinishedAt"))
    previous_start = aware(record.started_at)
    new_run = started is not None and (previous_start is None or started > previous_start)
    record.health = (state.get("Health") or {}).get("Status")
    if new_run:
        record.started_at = started
        record.oom_killed = False  # the flag tells about the current or the last run
    if state.get("OOMKilled") or oom:
        record.oom_killed = True
    if status == "running":
        record.state, record.next_restart_at = "running", None
        return Change(started=new_run)

    record.exit_code = state.get("ExitCode")
    change = Change()
    died = finished is not None and (started is None or finished >= started)
    if (
        died
        and finished is not None
        and record.state != STOPPED
        and not _counted(record.deaths, finished)
    ):
        change = _count_death(record, finished, policy)
    if change.gave_up:
        record.state = CRASHLOOP
    elif record.state not in STICKY:
        record.state = status
    if died:
        record.finished_at = finished
    return change


def _counted(deaths: Iterable[float], finished: datetime) -> bool:
    moment = _epoch(finished)
    return any(abs(moment - seen) < 1e-3 for seen in deaths)


def _count_death(record: Record, finished: datetime, policy: RestartPolicy) -> Change:
    moment = _epoch(finished)
    deaths = sorted([*(record.deaths or []), moment])
    recent = [d for d in deaths if moment - policy.window < d <= moment]
    # Deaths outside the window are forgotten, except the last (the next one is compared to it).
    kept = [d for d in deaths if d > moment - policy.window] or [moment]
    record.deaths = kept[-_MAX_DEATHS_KEPT:]
    if len(recent) >= policy.deaths:
        record.next_restart_at = None
        return Change(died=True, gave_up=True, recent_deaths=len(recent))
    record.next_restart_at = finished + timedelta(seconds=policy.delay(len(recent)))
    return Change(died=True, recent_deaths=len(recent))


def mark_missing(record: Record) -> bool:
    """The engine has no such container any more; True when that is news."""
    if record.state == MISSING:
        return False
    record.state, record.health, record.next_restart_at = MISSING, None, None
    return True


def restart_due(record: Record, now: datetime) -> bool:
    """Whether the tracker should start this container again now."""
    if record.state not in RESTARTABLE:
        return False
    due = aware(record.next_restart_at)
    return due is None or due <= now


def recent_deaths(record: Record, now: datetime, policy: RestartPolicy) -> int:
    moment = now.timestamp()
    return sum(1 for d in record.deaths or [] if moment - policy.window < d)


# -- the environment ------------------------------------------------------------------------


def expected_slots(spec: Mapping[str, Any]) -> frozenset[Slot]:
    """Every container a deployment snapshot asks for (one replica per service)."""
    return frozenset(
        (app["name"], service, 0)
        for app in spec.get("apps", [])
        for service in (app.get("manifest") or {}).get("services", {})
    )


class Recorded(Protocol):
    app: str
    service: str
    state: str
    health: str | None
    exit_code: int | None
    oom_killed: bool


@dataclass(frozen=True)
class Verdict:
    """The environment status the records call for: `ready`, `degraded`, or None (no change)."""

    status: str | None
    detail: str = ""


def environment_verdict(slots: Iterable[Slot], records: Iterable[Recorded]) -> Verdict:
    """`degraded` when an app of the revision is unhealthy, crash-looping, failed, stopped or
    misses a container; `ready` when every app runs; None while something is still starting."""
    by_app: dict[str, list[Recorded]] = {}
    for record in records:
        by_app.setdefault(record.app, []).append(record)
    covered = {(r.app, r.service) for rs in by_app.values() for r in rs if r.state != MISSING}
    problems, unsettled = [], False
    for app in sorted({slot[0] for slot in slots}):
        services = sorted(s for a, s, _ in slots if a == app)
        missing = [s for s in services if (app, s) not in covered]
        present = [r for r in by_app.get(app, []) if r.service in services]
        # What a user stopped on purpose is no degradation; the rest of the app is judged.
        judged = [r for r in present if r.state != STOPPED]
        status = (
            app_status(True, DeploymentStatus.SUCCEEDED, judged) if judged else AppStatus.RUNNING
        )
        if missing:
            problems.append(f"{app}: missing {', '.join(missing)}")
        elif status in DEGRADED_APP:
            problems.append(f"{app}: {status}{_why(present)}")
        elif status not in GOOD_APP:
            unsettled = True
    if problems:
        return Verdict(EnvironmentStatus.DEGRADED, "; ".join(problems))
    return Verdict(None) if unsettled else Verdict(EnvironmentStatus.READY)


def _why(records: list[Recorded]) -> str:
    for record in sorted(records, key=lambda r: r.service):
        if record.state in ("running",) and record.health != "unhealthy":
            continue
        reasons = [record.state if record.health != "unhealthy" else "unhealthy"]
        if record.exit_code is not None and record.state not in ("running",):
            reasons.append(f"exit code {record.exit_code}")
        if record.oom_killed:
            reasons.append("out of memory")
        return f" ({record.service}: {', '.join(reasons)})"
    return ""
