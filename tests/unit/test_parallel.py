"""The dependency-aware parallel runner on plain values: order, concurrency, failure, cancel."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from workers.deploy.parallel import Outcome, run_in_waves

# Long enough never to fire on a healthy run; a wait that times out means the property failed.
TIMEOUT = 10


class Boom(Exception):
    pass


class Recorder:
    """Records start/finish events from worker threads, in the order they happen."""

    def __init__(self, action: Callable[[str], None] = lambda item: None) -> None:
        self.events: list[str] = []
        self.lock = threading.Lock()
        self.action = action

    def __call__(self, item: str) -> None:
        self.note(f"start {item}")
        self.action(item)
        self.note(f"end {item}")

    def note(self, event: str) -> None:
        with self.lock:
            self.events.append(event)

    def started(self) -> set[str]:
        return {e.split()[1] for e in self.events if e.startswith("start ")}


def wait_for(event: threading.Event) -> None:
    if not event.wait(TIMEOUT):
        raise AssertionError("timed out: the other item never ran alongside this one")


@pytest.mark.parametrize(
    "items",
    [
        pytest.param({"a": set(), "b": {"a"}, "c": {"b"}}, id="chain"),
        pytest.param({"d": {"b", "c"}, "b": {"a"}, "c": {"a"}, "a": set()}, id="diamond"),
        pytest.param({"x": set(), "y": set(), "z": {"x", "y"}, "w": {"z", "x"}}, id="fan-in"),
    ],
)
@pytest.mark.parametrize("max_workers", [1, 4])
def test_dependencies_finish_before_dependents_start(
    items: dict[str, set[str]], max_workers: int
) -> None:
    recorder = Recorder()

    outcome = run_in_waves(items, recorder, max_workers=max_workers)

    assert sorted(outcome.succeeded) == sorted(items)
    assert outcome.failed == {} and outcome.not_started == []
    assert outcome.ok
    for item, deps in items.items():
        for dep in deps:
            assert recorder.events.index(f"end {dep}") < recorder.events.index(f"start {item}")
    for item, deps in items.items():
        assert all(outcome.succeeded.index(d) < outcome.succeeded.index(item) for d in deps)


def test_independent_items_run_concurrently() -> None:
    # Each waits until the other has started: run one after the other, both time out.
    both_started = threading.Barrier(2, timeout=TIMEOUT)

    outcome = run_in_waves(
        {"a": set(), "b": set()}, lambda item: both_started.wait(), max_workers=2
    )

    assert outcome.failed == {}
    assert sorted(outcome.succeeded) == ["a", "b"]


def test_an_item_starts_as_soon_as_its_own_dependencies_are_done() -> None:
    # "slow" only finishes once "after-a" started: a runner that waited for the whole
    # first wave ("a" and "slow") before starting "after-a" would time out here.
    after_a_started = threading.Event()

    def func(item: str) -> None:
        if item == "after-a":
            after_a_started.set()
        elif item == "slow":
            wait_for(after_a_started)

    outcome = run_in_waves({"a": set(), "slow": set(), "after-a": {"a"}}, func, max_workers=3)

    assert outcome.failed == {}
    assert sorted(outcome.succeeded) == ["a", "after-a", "slow"]


def test_failure_stops_new_starts() -> None:
    def func(item: str) -> None:
        if item == "a":
            raise Boom("a broke")

    recorder = Recorder(func)

    outcome = run_in_waves(
        {"a": set(), "b": set(), "c": set(), "after-a": {"a"}}, recorder, max_workers=1
    )

    assert recorder.started() == {"a"}
    assert list(outcome.failed) == ["a"]
    assert isinstance(outcome.failed["a"], Boom)
    assert outcome.succeeded == []
    assert outcome.not_started == ["b", "c", "after-a"]
    assert not outcome.ok


def test_failure_waits_for_the_running_items() -> None:
    a_failing = threading.Event()

    def func(item: str) -> None:
        if item == "a":
            a_failing.set()
            raise Boom("a broke")
        wait_for(a_failing)  # "b" is still running when "a" fails

    outcome = run_in_waves({"a": set(), "b": set(), "after-a": {"a"}}, func, max_workers=2)

    assert list(outcome.failed) == ["a"]
    assert outcome.succeeded == ["b"]
    assert outcome.not_started == ["after-a"]


def test_base_exceptions_are_reported_as_failures() -> None:
    def func(item: str) -> None:
        raise SystemExit(3)

    outcome = run_in_waves({"a": set()}, func, max_workers=1)

    assert isinstance(outcome.failed["a"], SystemExit)


def test_cancel_stops_new_starts() -> None:
    cancel = threading.Event()

    def func(item: str) -> None:
        if item == "b":
            cancel.set()

    recorder = Recorder(func)

    outcome = run_in_waves(
        {"a": set(), "b": {"a"}, "c": {"b"}, "d": {"a"}},
        recorder,
        max_workers=1,
        cancelled=cancel.is_set,
    )

    assert outcome.succeeded == ["a", "b"]
    assert outcome.failed == {}
    assert outcome.not_started == ["c", "d"]
    assert recorder.started() == {"a", "b"}
    assert not outcome.ok


def test_cancelled_before_anything_started() -> None:
    recorder = Recorder()

    outcome = run_in_waves(
        {"a": set(), "b": {"a"}}, recorder, max_workers=2, cancelled=lambda: True
    )

    assert recorder.events == []
    assert outcome == Outcome(succeeded=[], failed={}, not_started=["a", "b"])


def test_unknown_dependencies_count_as_satisfied() -> None:
    recorder = Recorder()

    outcome = run_in_waves(
        {"web": {"db-elsewhere"}, "proxy": {"web", "dns"}}, recorder, max_workers=2
    )

    assert outcome.succeeded == ["web", "proxy"]
    assert outcome.ok


def test_nothing_to_run() -> None:
    assert run_in_waves({}, Recorder(), max_workers=1) == Outcome()


@pytest.mark.parametrize(
    ("items", "cycle"),
    [
        pytest.param({"a": {"b"}, "b": {"a"}}, "a -> b -> a", id="two items"),
        pytest.param({"a": {"a"}}, "a -> a", id="self"),
        pytest.param(
            {"x": set(), "a": {"x", "b"}, "b": {"c"}, "c": {"a"}}, "a -> b -> c -> a", id="three"
        ),
    ],
)
def test_cycle_is_an_error_before_anything_runs(items: dict[str, set[str]], cycle: str) -> None:
    recorder = Recorder()

    with pytest.raises(ValueError, match=f"^dependency cycle: {cycle}$"):
        run_in_waves(items, recorder, max_workers=2)
    assert recorder.events == []


def test_max_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        run_in_waves({"a": set()}, Recorder(), max_workers=0)


def test_plain_tuples_as_items() -> None:
    """The planner's start graph, keyed by (app, service, replica), runs as is."""
    db, web = ("wp", "db", 0), ("wp", "web", 0)
    recorder_events: list[tuple[str, str, int]] = []

    outcome = run_in_waves({web: {db}, db: set()}, recorder_events.append, max_workers=2)

    assert recorder_events == [db, web]
    assert outcome.succeeded == [db, web]
