"""The tracker's rules without Docker: deaths, backoff, crash loops, OOM, environment status."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from workers.tracker.lifecycle import (
    RestartPolicy,
    engine_time,
    environment_verdict,
    expected_slots,
    mark_missing,
    observe,
    restart_due,
)

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
POLICY = RestartPolicy(deaths=3, window=60, backoff=1, backoff_max=4)


@dataclass
class Rec:
    app: str = "web"
    service: str = "web"
    state: str = "running"
    health: str | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    deaths: list = field(default_factory=list)
    restart_count: int = 0
    next_restart_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def running(started: datetime, health: str | None = None) -> dict:
    state = {
        "Status": "running",
        "Running": True,
        "StartedAt": stamp(started),
        "FinishedAt": "0001-01-01T00:00:00Z",
        "ExitCode": 0,
        "OOMKilled": False,
    }
    if health:
        state["Health"] = {"Status": health}
    return {"State": state}


def exited(started: datetime, finished: datetime, code: int = 1, oom: bool = False) -> dict:
    return {
        "State": {
            "Status": "exited",
            "Running": False,
            "StartedAt": stamp(started),
            "FinishedAt": stamp(finished),
            "ExitCode": code,
            "OOMKilled": oom,
        }
    }


def test_engine_time_reads_nanoseconds_and_the_zero_time():
    assert engine_time("2030-01-01T12:00:00.123456789Z") == T0 + timedelta(microseconds=123456)
    assert engine_time("2030-01-01T14:00:00+02:00") == T0
    assert engine_time("0001-01-01T00:00:00Z") is None
    assert engine_time("") is None and engine_time("soon") is None


def test_backoff_doubles_and_is_capped():
    assert [POLICY.delay(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 4, 4]


def test_a_death_is_counted_once_and_the_restart_waits_for_its_backoff():
    record = Rec()
    observe(record, running(T0), POLICY)
    died = T0 + timedelta(seconds=5)
    change = observe(record, exited(T0, died, code=137), POLICY)
    assert change.died and not change.gave_up
    assert (record.state, record.exit_code, len(record.deaths)) == ("exited", 137, 1)
    assert record.next_restart_at == died + timedelta(seconds=1)
    # The same death seen again (a relist after the event) changes nothing.
    assert not observe(record, exited(T0, died, code=137), POLICY).died
    assert len(record.deaths) == 1
    assert not restart_due(record, died + timedelta(seconds=0.5))
    assert restart_due(record, died + timedelta(seconds=1))


def test_repeated_deaths_within_the_window_end_in_crashloop_which_sticks():
    record = Rec()
    moment, delays = T0, []
    for _ in range(3):
        observe(record, running(moment), POLICY)
        died = moment + timedelta(seconds=0.3)
        change = observe(record, exited(moment, died), POLICY)
        if record.next_restart_at:
            delays.append((record.next_restart_at - died).total_seconds())
        moment = died + timedelta(seconds=5)
    assert delays == [1, 2]
    assert change.gave_up and record.state == "crashloop"
    assert record.next_restart_at is None and not restart_due(record, moment)
    # Seen exited again: still given up; started by someone: running again.
    observe(record, exited(T0, T0 + timedelta(seconds=10.3)), POLICY)
    assert record.state == "crashloop"
    observe(record, running(moment + timedelta(seconds=60)), POLICY)
    assert record.state == "running"


def test_deaths_outside_the_window_do_not_add_up():
    record = Rec()
    for minute in range(5):
        start = T0 + timedelta(minutes=2 * minute)
        observe(record, running(start), POLICY)
        observe(record, exited(start, start + timedelta(seconds=1)), POLICY)
    assert record.state == "exited"
    assert record.next_restart_at == T0 + timedelta(minutes=8, seconds=2)


def test_oom_from_the_inspect_or_the_event_stays_until_the_next_run():
    record = Rec()
    observe(record, running(T0), POLICY)
    died = T0 + timedelta(seconds=2)
    observe(record, exited(T0, died, code=137), POLICY)
    assert not record.oom_killed  # this engine reports the OOM only as an event
    observe(record, exited(T0, died, code=137), POLICY, oom=True)
    assert record.oom_killed and len(record.deaths) == 1
    observe(record, exited(T0, died, code=137), POLICY)
    assert record.oom_killed
    observe(record, running(T0 + timedelta(seconds=4)), POLICY)
    assert not record.oom_killed
    observe(record, exited(T0 + timedelta(seconds=4), T0 + timedelta(seconds=6), oom=True), POLICY)
    assert record.oom_killed


def test_health_and_missing_containers():
    record = Rec()
    observe(record, running(T0, "unhealthy"), POLICY)
    assert (record.state, record.health) == ("running", "unhealthy")
    assert mark_missing(record) and not mark_missing(record)
    assert record.state == "missing" and not restart_due(record, T0)


SPEC = {
    "apps": [
        {"name": "web", "manifest": {"services": {"web": {}, "worker": {}}}},
        {"name": "db", "manifest": {"services": {"db": {}}}},
        {"name": "lib", "manifest": {"type": "library"}},
    ]
}


@pytest.mark.parametrize(
    ("records", "status", "detail"),
    [
        ([Rec("web", "web"), Rec("web", "worker"), Rec("db", "db")], "ready", ""),
        ([Rec("web", "web"), Rec("web", "worker", health="healthy"), Rec("db", "db")], "ready", ""),
        ([Rec("web", "web"), Rec("web", "worker", health="starting"), Rec("db", "db")], None, ""),
        ([Rec("web", "web"), Rec("db", "db")], "degraded", "web: missing worker"),
        (
            [Rec("web", "web"), Rec("web", "worker", state="missing"), Rec("db", "db")],
            "degraded",
            "web: missing worker",
        ),
        (
            [
                Rec("web", "web"),
                Rec("web", "worker"),
                Rec("db", "db", state="crashloop", exit_code=1),
            ],
            "degraded",
            "db: crashloop (db: crashloop, exit code 1)",
        ),
        (
            [
                Rec("web", "web"),
                Rec("web", "worker", state="exited", exit_code=137, oom_killed=True),
                Rec("db", "db"),
            ],
            "degraded",
            "web: failed (worker: exited, exit code 137, out of memory)",
        ),
        ([Rec("web", "web"), Rec("web", "worker", state="stopped"), Rec("db", "db")], "ready", ""),
        (
            [Rec("web", "web", health="unhealthy"), Rec("web", "worker"), Rec("db", "db")],
            "degraded",
            "web: unhealthy (web: unhealthy)",
        ),
    ],
)
def test_environment_verdict(records, status, detail):
    verdict = environment_verdict(expected_slots(SPEC), records)
    assert (verdict.status, verdict.detail) == (status, detail)


def test_a_container_stopped_by_an_action_is_left_down_and_its_stop_is_no_death():
    record = Rec()
    observe(record, running(T0), POLICY)
    record.state = "stopped"  # what the stop action records
    stopped = T0 + timedelta(seconds=3)
    change = observe(record, exited(T0, stopped, code=143), POLICY)
    assert not change.died and record.deaths == []
    assert record.state == "stopped" and not restart_due(record, stopped + timedelta(hours=1))
    observe(record, running(T0 + timedelta(seconds=10)), POLICY)  # the start action
    assert record.state == "running"
