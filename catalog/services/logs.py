"""Container logs of an app, read from the engine: a bounded tail, or a bounded follow."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import docker
from docker.errors import APIError
from docker.errors import NotFound as EngineNotFound
from sqlalchemy.orm import Session

from catalog.auth import Principal
from catalog.errors import NotFound, ServiceUnavailable
from catalog.models import App, Host
from catalog.services.environments import get_environment

MAX_TAIL = 10_000
FOLLOW_MAX_SECONDS = 3600
FOLLOW_POLL_SECONDS = 1.0  # how often a quiet follow checks that its client is still there
FOLLOW_QUEUE = 64  # chunks read ahead of the client


def _containers(client: docker.DockerClient, env_id: str, app: str, service: str | None):
    labels = [f"io.catalog.env={env_id}", f"io.catalog.app={app}"]
    if service:
        labels.append(f"io.catalog.service={service}")
    try:
        found = client.containers.list(all=True, filters={"label": labels})
    except (APIError, OSError) as exc:
        raise ServiceUnavailable(f"the Docker engine does not answer: {exc}") from None
    return sorted(found, key=lambda c: (c.labels.get("io.catalog.service", ""), c.name))


def app_containers(
    session: Session,
    principal: Principal,
    engine: Callable[[Host | None], docker.DockerClient],
    env_name: str,
    app_name: str,
    service: str | None,
):
    """The app's containers on its environment's engine (`engine(host)` gives the client)."""
    environment = get_environment(session, principal, env_name)
    if not any(a.name == app_name for a in environment.apps if isinstance(a, App)):
        raise NotFound(f"environment {env_name!r} has no app {app_name!r}")
    containers = _containers(engine(environment.host), environment.id, app_name, service)
    if not containers:
        what = f"service {service!r} of app {app_name!r}" if service else f"app {app_name!r}"
        raise NotFound(f"{what} has no containers (is it deployed?)")
    return containers


def _prefix(container, many: bool) -> bytes:
    return f"{container.labels.get('io.catalog.service', '?')} | ".encode() if many else b""


def tail(containers, lines: int) -> bytes:
    """The last `lines` lines of each container, prefixed by its service when several."""
    many = len(containers) > 1
    out = []
    for container in containers:
        try:
            raw = container.logs(tail=min(lines, MAX_TAIL), stdout=True, stderr=True)
        except EngineNotFound:
            continue
        prefix = _prefix(container, many)
        out += [prefix + line for line in raw.splitlines(keepends=True)]
    return b"".join(out)


def follow(containers, lines: int, alive: Callable[[], bool]) -> Iterator[bytes]:
    """Stream one container's log (the first one when several), starting with a tail.

    A thread reads the engine's stream, so that a quiet log still lets this generator ask
    `alive()` every FOLLOW_POLL_SECONDS and end, closing the engine's stream, once the
    client has gone.
    """
    container = containers[0]
    # The engine ends the stream at `until`, so a quiet container never holds a thread forever.
    stream = container.logs(
        stream=True,
        follow=True,
        tail=min(lines, MAX_TAIL),
        stdout=True,
        stderr=True,
        until=int(time.time() + FOLLOW_MAX_SECONDS),
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
