"""Stream slots (catalog/streams.py) and the log follower's end when its client goes away."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from catalog.errors import TooManyRequests
from catalog.services import logs
from catalog.streams import LocalTokenSlots, Streams, client_gone
from workers.engine import ContainerSummary


def test_slots_are_bounded_per_token_and_per_process_and_given_back_once():
    streams = Streams(per_process=3, per_token=2, tokens=LocalTokenSlots())
    a1, a2 = streams.open("a", {}), streams.open("a", {})
    with pytest.raises(TooManyRequests, match="the token has 2 streams") as refused:
        streams.open("a", {})
    assert refused.value.headers == {"Retry-After": "5"}
    b1 = streams.open("b", {})
    with pytest.raises(TooManyRequests, match="this API process serves 3 streams"):
        streams.open("c", {})
    assert streams.running == 3
    a1.release()
    a1.release()  # a second release (the stream's end, then the server's close) counts once
    assert streams.running == 2
    streams.open("a", {}).release()
    for slot in (a2, b1):
        slot.release()
    assert streams.running == 0


def test_a_closed_client_connection_is_seen_without_writing():
    server, client = socket.socketpair()
    with server, client:
        environ = {"gunicorn.socket": server}
        assert not client_gone(environ)
        client.sendall(b"GET / HTTP/1.1\r\n")  # a pipelined request: still there
        assert not client_gone(environ)
        server.recv(100)
        client.close()
        assert client_gone(environ)
    assert not client_gone({})  # no socket (the test client): the next write tells


class QuietEngineStream:
    """An engine log stream that sends its tail and then nothing until it is closed."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def __iter__(self):
        yield b"the tail\n"
        self.closed.wait(30)
        if self.closed.is_set():
            raise OSError("closed under the reader")

    def close(self) -> None:
        self.closed.set()


class QuietEngine:
    def __init__(self) -> None:
        self.stream = QuietEngineStream()

    def follow_logs(self, _container_id: str, **_options):
        return self.stream


def test_a_quiet_log_follow_ends_and_closes_the_engine_stream_once_its_client_is_gone():
    engine, present = QuietEngine(), threading.Event()
    present.set()
    source = logs.LogSource(engine, ContainerSummary(id="c1", name="web"))
    follow = logs.follow([source], 10, present.is_set)
    assert next(follow) == b"the tail\n"
    started = time.monotonic()
    threading.Timer(0.3, present.clear).start()
    assert list(follow) == []  # the generator ends: the server then closes the response
    assert time.monotonic() - started < 0.3 + 2 * logs.FOLLOW_POLL_SECONDS
    assert engine.stream.closed.is_set()
