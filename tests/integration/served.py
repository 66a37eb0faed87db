"""The API as it is served: `catalogctl serve`, real gunicorn workers on a loopback port."""

from __future__ import annotations

import http.client
import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import BIN, free_port, service_env, wait_until_healthy

__all__ = ["get", "serve", "service_env"]


@pytest.fixture
def serve(service_env, tmp_path) -> Iterator[Callable[..., int]]:
    """serve(workers, env=None, **settings) -> the port of `catalogctl serve` on this test's
    database; `env`: more environment variables of the server."""
    started: list[subprocess.Popen] = []

    def start(workers: int, env: dict[str, str] | None = None, **settings: str) -> int:
        port = free_port()
        env = {
            **service_env,
            **(env or {}),
            **{f"CATALOG_{name}": value for name, value in settings.items()},
        }
        command = [BIN / "catalogctl", "serve", "--port", str(port), "--workers", str(workers),
                   "--threads", "4", "--no-migrate", "--graceful-timeout", "1"]  # fmt: skip
        log = (tmp_path / f"api-{port}.log").open("wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        started.append(process)
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
        return port

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Status and body of one request on a connection of its own (the kernel picks the worker
    for each)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={**headers, "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
