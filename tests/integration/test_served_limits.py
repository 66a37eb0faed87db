"""Limits as the served API holds them: real gunicorn workers on a loopback port (G46, F38).

- the read rate limit holds across two worker processes that count in the machine's Redis
  (and, counting in memory, each process would let its own budget through);
- a token's streams are bounded across the processes, a process's streams in it, with 429
  and Retry-After; a client that goes away gives its slot back;
- an over-long request line or header gets the 414/431 the OpenAPI document states.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

from catalog import httplimits
from tests.e2e.conftest import BIN
from tests.integration.served import get, serve, service_env

__all__ = ["serve", "service_env"]  # fixtures: this test's database, home and queue; servers
REDIS_URL = os.environ.get("CATALOG_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


# --- the read limit across processes ----------------------------------------------------------


@pytest.mark.parametrize("storage", ["redis", "memory"])
def test_the_read_limit_holds_across_worker_processes_on_redis(serve, make_caller, storage):
    url = REDIS_URL if storage == "redis" else "memory://"
    port = serve(2, READ_RATE_LIMIT="10/minute", RATELIMIT_STORAGE_URL=url)
    viewer = make_caller("acme", "viewer")
    statuses = [get(port, "/v1/packages", viewer.headers)[0] for _ in range(40)]
    assert set(statuses) == {200, 429}, statuses
    if storage == "redis":
        assert statuses.count(200) == 10, statuses
        assert statuses[:10] == [200] * 10
    else:  # each process counts its own: the two let more through (both served requests)
        assert statuses.count(200) > 10, statuses


# --- streams ----------------------------------------------------------------------------------


class RawStream:
    """A follow=1 request on a socket of its own; the head is read, the body left pending."""

    def __init__(self, port: int, path: str, caller) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        request = (
            f"GET {path} HTTP/1.1\r\nHost: catalog\r\nAuthorization: Bearer {caller.secret}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = self.sock.recv(65536)
            assert chunk, f"the connection closed before the head: {received!r}"
            received += chunk
        head, _, self.body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}

    def close(self) -> None:
        self.sock.close()


EVENTS = "/v1/environments/shop/events?follow=1"


@pytest.fixture
def shop(client, make_caller):
    """An environment `shop` of tenant acme; make_viewer() -> a new viewer token of acme."""
    deployer = make_caller("acme", "deployer")
    created = client.post("/v1/environments", json={"name": "shop"}, headers=deployer.headers)
    assert created.status_code == 201, created.get_json()
    return lambda: make_caller("acme", "viewer")


def assert_refused(stream: RawStream, words: str) -> None:
    assert stream.status == 429, (stream.status, stream.body)
    assert int(stream.headers["retry-after"]) >= 5, stream.headers
    stream.close()


def eventually_open(port: int, caller, seconds: float = 10) -> RawStream:
    """A stream of `caller`, retried until a slot is free again (bounded)."""
    deadline = time.monotonic() + seconds
    while True:
        stream = RawStream(port, EVENTS, caller)
        if stream.status == 200:
            return stream
        stream.close()
        assert time.monotonic() < deadline, f"no slot freed in {seconds} s"
        time.sleep(0.2)


def test_a_tokens_streams_are_bounded_across_processes_and_freed_by_a_disconnect(serve, shop):
    port = serve(2, RATELIMIT_STORAGE_URL=REDIS_URL, STREAMS_PER_TOKEN="2", STREAMS_PER_PROCESS="3")
    alice, bob = shop(), shop()
    held = [RawStream(port, EVENTS, alice) for _ in range(2)]
    assert [s.status for s in held] == [200, 200]
    assert held[0].headers["content-type"].startswith("text/event-stream")
    # Whichever process each new connection reaches, the token's third stream is refused.
    for _ in range(6):
        refused = RawStream(port, EVENTS, alice)
        assert_refused(refused, "")
    other = RawStream(port, EVENTS, bob)
    assert other.status == 200
    # The client of one stream goes away: its slot is free again at its stream's next poll.
    held.pop(0).close()
    held.append(eventually_open(port, alice))
    for stream in (*held, other):
        stream.close()
    for _ in range(2):
        eventually_open(port, alice).close()


def test_a_process_serves_a_bounded_number_of_streams_and_other_requests_still(serve, shop):
    port = serve(1, STREAMS_PER_TOKEN="5", STREAMS_PER_PROCESS="2")
    alice, bob, carol = shop(), shop(), shop()
    held = [RawStream(port, EVENTS, alice), RawStream(port, EVENTS, bob)]
    assert [s.status for s in held] == [200, 200]
    assert_refused(RawStream(port, EVENTS, carol), "")
    # The threads the streams do not hold serve everything else.
    assert get(port, "/v1/environments/shop", carol.headers)[0] == 200
    held.pop().close()
    eventually_open(port, carol).close()
    held[0].close()


def test_serve_refuses_streams_that_would_hold_every_thread(tmp_path):
    env = {**os.environ, "CATALOG_STREAMS_PER_PROCESS": "4", "CATALOG_HOME": str(tmp_path)}
    command = [BIN / "catalogctl", "serve", "--threads", "4", "--no-migrate", "--port", "1"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "CATALOG_STREAMS_PER_PROCESS=4 must be below --threads=4" in result.stderr


# --- 414 and 431, as documented ---------------------------------------------------------------


def raw_answer(port: int, request: bytes) -> tuple[int, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
    return int(head[0].split()[1]), headers.get("content-type", "")


def test_over_long_request_lines_and_headers_get_the_documented_414_and_431(serve, make_caller):
    port = serve(1)
    token = make_caller("acme", "viewer").secret
    path = "/v1/packages?q=" + "a" * httplimits.REQUEST_LINE_BYTES
    cases = {
        "line": (f"GET {path} HTTP/1.1\r\nHost: c\r\n\r\n", 414),
        "header": (f"GET /v1/packages HTTP/1.1\r\nHost: c\r\nX-Big: {'b' * 9000}\r\n\r\n", 431),
        "headers": ("GET /v1/packages HTTP/1.1\r\nHost: c\r\n"
                    + "".join(f"X-{n}: 1\r\n" for n in range(httplimits.HEADER_COUNT + 1))
                    + "\r\n", 431),
        "just under": (f"GET /v1/environments?pad={'a' * 4000} HTTP/1.1\r\nHost: c\r\n"
                       f"Authorization: Bearer {token}\r\nX-Big: {'b' * 8000}\r\n"
                       "Connection: close\r\n\r\n", 200),
    }  # fmt: skip
    for name, (request, status) in cases.items():
        answered, content_type = raw_answer(port, request.encode())
        assert answered == status, name
        if status != 200:
            assert content_type == "text/html", (name, content_type)

    # The served document states both on every operation, as the server's own HTML page.
    status, body = get(port, "/v1/openapi.json", {})
    assert status == 200
    document = json.loads(body)
    for status in ("414", "431"):
        component = document["components"]["responses"][
            document["paths"]["/v1/packages"]["get"]["responses"][status]["$ref"].rsplit("/", 1)[1]
        ]
        assert list(component["content"]) == ["text/html"]
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if method != "parameters":
                    assert status in operation["responses"], (method, path, status)


def test_a_shared_slot_whose_process_died_frees_itself_when_its_lease_runs_out():
    import uuid

    from catalog.streams import RedisTokenSlots

    slots, token = RedisTokenSlots(REDIS_URL, lease_seconds=0.5), uuid.uuid4().hex
    assert slots.take(token, "held-by-a-dead-process", 1)
    assert not slots.take(token, "new", 1)
    deadline = time.monotonic() + 5
    while not slots.take(token, "new", 1):
        assert time.monotonic() < deadline, "the lease did not run out"
        time.sleep(0.1)
    slots.renew(token, "new")
    slots.give_back(token, "new")
    assert slots.take(token, "another", 1)
    slots.give_back(token, "another")
