"""What this process counts (prometheus_client), and the text a scrape answers.

Under `catalogctl serve` the gunicorn master points PROMETHEUS_MULTIPROC_DIR at an empty
directory before it forks: every worker process writes its counters and histograms to files
of its own there, and a scrape answered by any of them reads them all (prometheus_client's
multiprocess mode). Elsewhere (the embedded server, a test client, a worker or tracker on its
own port) the process's own registry is the answer.

The catalog's state (deployments, apps, packages, tenants, hosts) is read from the database
at scrape time (catalog.services.metrics): whichever worker ran a deployment, every API
process tells the same figures, and they survive the restart of any process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds. API answers are milliseconds (reads) to seconds (an upload scanned and stored).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# A route template (`/v1/packages/<name>`), never a raw path: one series per route.
UNMATCHED_ROUTE = "<unmatched>"

HTTP_REQUESTS = Counter(
    "catalog_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "catalog_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["route"],
    buckets=REQUEST_BUCKETS,
)


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    route = route or UNMATCHED_ROUTE
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(route).observe(seconds)


def exposition(collectors: Iterable[Collector] = ()) -> bytes:
    """The Prometheus text of this process (or of every process sharing its directory), plus
    what `collectors` read at this moment."""
    registry = _counted()
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


def start_server(port: int, address: str = "127.0.0.1") -> None:
    """Answer scrapes of this process (and of its children sharing the directory) on
    http://ADDRESS:PORT/metrics, from a thread of its own (`--metrics-port` of the worker
    and the tracker)."""
    start_http_server(port, addr=address, registry=_counted())


def _counted() -> CollectorRegistry:
    registry = CollectorRegistry()
    path = multiprocess_dir()
    if path is not None:
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_Own())
    return registry


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit hook: a dead worker's live gauges stop counting (its counters
    stay, as they must)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)


class _Own(Collector):
    """The process's default registry, offered to a registry of the scrape's own."""

    def collect(self):
        yield from REGISTRY.collect()
