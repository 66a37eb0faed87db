"""What the worker and the tracker count, scraped on their `--metrics-port` (off by default).

The worker's tasks run in Celery's pool processes: `catalogctl worker --metrics-port` points
PROMETHEUS_MULTIPROC_DIR at a directory before the pool forks, and the worker's own process
answers a scrape with every pool process's counts (catalog/metrics.py). The tracker is one
process: its own registry.
"""

from __future__ import annotations

import time

from celery.signals import task_postrun, task_prerun
from prometheus_client import Counter, Gauge, Histogram

# Seconds: a task runs from milliseconds (a resync) to the deploy time limit (30 minutes).
TASK_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# Seconds from the engine's event to the tracker handling it: milliseconds when it keeps up.
EVENT_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds of one full comparison of the records with the engine's listing.
RELIST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

TASKS = Counter(
    "catalog_worker_tasks",
    "Tasks this worker ran to an end, by task name and Celery state (SUCCESS, FAILURE, RETRY).",
    ["task", "state"],
)
TASK_DURATION = Histogram(
    "catalog_worker_task_duration_seconds",
    "Time a task ran in this worker, by task name.",
    ["task"],
    buckets=TASK_BUCKETS,
)
EVENT_LAG = Histogram(
    "catalog_tracker_event_lag_seconds",
    "Time from an engine's container event to the tracker handling it.",
    buckets=EVENT_LAG_BUCKETS,
)
RELIST_DURATION = Histogram(
    "catalog_tracker_relist_duration_seconds",
    "Time of one full comparison of the container records with the engine.",
    buckets=RELIST_BUCKETS,
)
EVENTS_DROPPED = Counter(
    "catalog_tracker_events_dropped",
    "Engine events dropped because the tracker's queue was full (a relist follows).",
)
QUEUED_EVENTS = Gauge(
    "catalog_tracker_queued_events",
    "Engine events waiting for the tracker.",
    multiprocess_mode="livesum",
)

_started: dict[str, float] = {}  # task id -> when it started, in this pool process


def count_tasks() -> None:
    """Count every task of this worker (Celery's signals, in whichever process runs it)."""
    task_prerun.connect(_task_started, weak=False)
    task_postrun.connect(_task_ended, weak=False)


def _task_started(task_id=None, **_):
    _started[task_id] = time.monotonic()


def _task_ended(task_id=None, task=None, state=None, **_):
    name = getattr(task, "name", "unknown")
    TASKS.labels(name, state or "UNKNOWN").inc()
    started = _started.pop(task_id, None)
    if started is not None:
        TASK_DURATION.labels(name).observe(time.monotonic() - started)


def event_handled(event: dict) -> None:
    """Observe the lag of an engine event (its `timeNano`) as it is handled."""
    at = event.get("timeNano")
    if isinstance(at, int) and at > 0:
        EVENT_LAG.observe(max(0.0, time.time() - at / 1e9))
