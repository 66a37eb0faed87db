"""Container logs of an app, read from the engine: a bounded tail, or a bounded follow."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from catalog.auth import Principal
from catalog.errors import NotFound, ServiceUnavailable
from catalog.models import App, Host
from catalog.services.environments import get_environment
from workers.engine import (
    APP_LABEL,
    ENV_LABEL,
    SERVICE_LABEL,
    ContainerSummary,
    Engine,
    EngineError,
)
from workers.engine import NotFound as EngineNotFound

MAX_TAIL = 10_000
FOLLOW_MAX_SECONDS = 3600
FOLLOW_POLL_SECONDS = 1.0  # how often a quiet follow checks that its client is still there
FOLLOW_QUEUE = 64  # chunks read ahead of the client


@dataclass(frozen=True)
class LogSource:
    """A container whose log is read, with the engine it runs on."""

    engine: Engine
    container: ContainerSummary

    @property
    def service(self) -> str:
        return self.container.labels.get(SERVICE_LABEL, "?")


def _containers(engine: Engine, env_id: str, app: str, service: str | None) -> list[LogSource]:
    labels = [f"{ENV_LABEL}={env_id}", f"{APP_LABEL}={app}"]
    if service:
        labels.append(f"{SERVICE_LABEL}={service}")
    try:
        found = engine.list_containers(labels)
    except (EngineError, OSError) as exc:
        raise ServiceUnavailable(f"the Docker engine does not answer: {exc}") from None
    found.sort(key=lambda c: (c.labels.get(SERVICE_LABEL, ""), c.name))
    return [LogSource(engine, container) for container in found]


def app_containers(
    session: Session,
    principal: Principal,
    engine: Callable[[Host | None], Engine],
    env_name: str,
    app_name: str,
    service: str | None,
) -> list[LogSource]:
    """The app's containers on its environment's engine (`engine(host)` gives it)."""
    environment = get_environment(session, principal, env_name)
    if not any(a.name == app_name for a in environment.apps if isinstance(a, App)):
        raise NotFound(f"environment {env_name!r} has no app {app_name!r}")
    containers = _containers(engine(environment.host), environment.id, app_name, service)
    if not containers:
        what = f"service {service!r} of app {app_name!r}" if service else f"app {app_name!r}"
        raise NotFound(f"{what} has no containers (is it deployed?)")
    return containers


def _prefix(source: LogSource, many: bool) -> bytes:
    return f"{source.service} | ".encode() if many else b""


def tail(containers: list[LogSource], lines: int) -> bytes:
    """The last `lines` lines of each container, prefixed by its service when several."""
    many = len(containers) > 1
    out = []
    for source in containers:
        try:
            raw = source.engine.logs(source.container.id, tail=min(lines, MAX_TAIL))
        except EngineNotFound:
            continue
        prefix = _prefix(source, many)
        out += [prefix + line for line in raw.splitlines(keepends=True)]
    return b"".join(out)


def follow(containers: list[LogSource], lines: int, alive: Callable[[], bool]) -> Iterator[bytes]:
    """Stream one container's log (the first one when several), starting with a tail.

    A thread reads the engine's stream, so that a quiet log still lets this generator ask
    `alive()` every FOLLOW_POLL_SECONDS and end, closing the engine's stream, once the
    client has gone.
    """
    source = containers[0]
    # The engine ends the stream at `until`, so a quiet container never holds a thread forever.
    stream = source.engine.follow_logs(
        source.container.id, tail=min(lines, MAX_TAIL), until=int(time.time() + FOLLOW_MAX_SECONDS)
    )
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=FOLLOW_QUEUE)
    stop = threading.Event()
    threading.Thread(target=_pump, args=(stream, chunks, stop), daemon=True).start()
    try:
        while True:
            try:
                chunk = chunks.get(timeout=FOLLOW_POLL_SECONDS)
            except queue.Empty:
                if not alive():
                    return
                continue
            if chunk is None:
                return
            yield chunk
    finally:
        stop.set()
        stream.close()  # shuts the engine connection: the reader's read ends


def _pump(stream, chunks: queue.Queue, stop: threading.Event) -> None:
    """Move the engine's chunks to the queue until the stream ends or the follower stops."""
    try:
        for chunk in stream:
            if not _put(chunks, chunk, stop):
                return
    except Exception:  # closed under it, or the engine went away: the stream ends
        pass
    _put(chunks, None, stop)


def _put(chunks: queue.Queue, item: bytes | None, stop: threading.Event) -> bool:
    """Put, waiting while the queue is full; False once the follower has stopped."""
    while not stop.is_set():
        try:
            chunks.put(item, timeout=FOLLOW_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False
