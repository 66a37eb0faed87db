"""The tracker's reader of engine events: a bounded queue, reconnects, resubscribes with `since`."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from workers.engine import ENV_LABEL, Engine

log = logging.getLogger("catalog.tracker")

EVENT_ACTIONS = ("start", "die", "oom", "kill", "health_status", "destroy", "restart", "stop")


class EventReader(threading.Thread):
    """Engine events -> a bounded queue; reconnects with backoff and resubscribes with `since`."""

    def __init__(
        self, engine: Callable[[], Engine], sink: queue.Queue, on_connect, max_delay
    ) -> None:
        super().__init__(name="engine-events", daemon=True)
        self.engine, self.sink, self.on_connect, self.max_delay = (
            engine,
            sink,
            on_connect,
            max_delay,
        )
        self.since: str | None = None  # the last event's time, "seconds.nanoseconds"
        self.connects = 0
        self._dropped = 0
        self._lock = threading.Lock()
        self._stream: Any = None
        self._stopping = threading.Event()

    def run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            engine: Engine | None = None
            try:
                engine = self.engine()  # a connection of its own, made again after each drop
                self._stream = engine.events(label=ENV_LABEL, actions=EVENT_ACTIONS,
                                             since=self.since)  # fmt: skip
                self.connects += 1
                log.info("following engine events (connection %d, since %s)",
                         self.connects, self.since or "now")  # fmt: skip
                self.on_connect()
                delay = 0.2
                for event in self._stream:
                    self._mark(event)
                    try:
                        self.sink.put_nowait(event)
                    except queue.Full:
                        with self._lock:
                            self._dropped += 1
                        self.on_connect()  # whatever the dropped event said, a relist finds
                if not self._stopping.is_set():
                    log.warning("the engine closed the event stream; reconnecting")
            except Exception as exc:
                if not self._stopping.is_set():
                    log.warning("engine events unavailable (%s); retrying in %.1f s", exc, delay)
            finally:
                self._stream = None
                if engine is not None:
                    engine.close()
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2, self.max_delay)

    def _mark(self, event: dict) -> None:
        nanos = event.get("timeNano")
        if isinstance(nanos, int):
            self.since = f"{nanos // 1_000_000_000}.{nanos % 1_000_000_000:09d}"
        elif isinstance(event.get("time"), int):
            self.since = str(event["time"])

    def take_dropped(self) -> int:
        with self._lock:
            dropped, self._dropped = self._dropped, 0
        return dropped

    def close(self) -> None:
        self._stopping.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):  # a stream the engine already dropped
                stream.close()
