"""A real API server (`catalogctl serve` under gunicorn) on the session's PostgreSQL database and
this run's RabbitMQ queue; the CLI, real workers and engine cleanup for tests that deploy."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from catalog.models import Base
from tests.conftest import BROKER_URL, TASK_QUEUE, TEST_IMAGE, TEST_SECRET_KEY, remove_labelled

BIN = Path(sys.executable).parent
# Host ports for the apps this run deploys: a window of its own, so that runs at the same time
# (each with its own database, hence its own port allocation) do not collide.
_WINDOW = 32000 + random.randrange(0, 20) * 100
HOST_PORT_RANGE = f"{_WINDOW}-{_WINDOW + 99}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/v1/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy within {seconds} s")


@pytest.fixture
def service_env(database_url, tmp_path):
    """Environment variables that point the CLI and the server at this test's data."""
    env = {
        **os.environ,
        "CATALOG_DATABASE_URL": database_url,
        "CATALOG_HOME": str(tmp_path / "home"),
        "CATALOG_BLOB_DIR": str(tmp_path / "blobs"),
        # This run's own queue on the real broker, and host ports of its own.
        "CATALOG_BROKER_URL": BROKER_URL,
        "CATALOG_TASK_QUEUE": TASK_QUEUE,
        "CATALOG_SECRET_KEY": TEST_SECRET_KEY,
        "CATALOG_HOST_PORT_RANGE": HOST_PORT_RANGE,
        "CATALOG_MIN_RUNNING_SECONDS": "0.5",
        "CATALOG_SNAPSHOT_IMAGE": TEST_IMAGE,  # volume snapshots' helper, built offline
        # The CLI's profiles of this test only.
        "CATALOGCTL_CONFIG": str(tmp_path / "catalogctl.yaml"),
    }
    for name in ("CATALOG_TOKEN", "CATALOG_URL", "CATALOG_PROFILE"):
        env.pop(name, None)
    yield env
    engine = create_engine(database_url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def live_server(service_env, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # A short grace at the end: an event stream still open would hold its thread until the
    # graceful timeout.
    command = [BIN / "catalogctl", "serve", "--port", str(port), "--workers", "1", "--no-migrate"]
    log = (tmp_path / "api.log").open("wb")  # kept with the test's other files
    process = subprocess.Popen(
        [*command, "--graceful-timeout", "2"], env=service_env, stdout=log, stderr=log
    )
    try:
        wait_until_healthy(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def catalogctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "catalogctl", *args], env=env, capture_output=True, text=True, timeout=120
    )


# -- the CLI against a live stack: a token, a worker, cleanup of what the engine ran -----------


@dataclass
class Cli:
    """Runs `catalogctl` as a user would, with this test's environment (profile file included)."""

    env: dict[str, str]
    cwd: Path

    def __call__(self, *args: str, code: int = 0, stdin: str | None = None, **extra: str):
        result = subprocess.run(
            [BIN / "catalogctl", *args],
            env={**self.env, **extra},
            cwd=self.cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
        if code == 0:
            assert "Traceback" not in result.stderr, result.stderr
        return result

    def json(self, *args: str, **extra: str):
        return json.loads(self(*args, "-o", "json", **extra).stdout)


@pytest.fixture
def admin_token(live_server, service_env) -> str:
    token = catalogctl("admin", "bootstrap", env=service_env).stdout.strip()
    assert token.startswith("cat_")
    return token


@pytest.fixture
def cli(live_server, service_env, admin_token, tmp_path) -> Cli:
    """The CLI as the admin of the live server (through CATALOG_URL and CATALOG_TOKEN)."""
    env = {**service_env, "CATALOG_URL": live_server, "CATALOG_TOKEN": admin_token}
    return Cli(env, tmp_path)


@pytest.fixture
def worker(service_env, tmp_path):
    """A real `catalogctl worker` on this test's database, blobs and queue."""
    from tests.integration.stack import WorkerProcess

    process = WorkerProcess(service_env, tmp_path / "worker.log").wait_ready()
    yield process
    process.stop()


@pytest.fixture
def engine_cleanup(service_env, docker_client, database_url):
    """Afterwards (before the tables are emptied): every engine object of this test's
    environments goes, whatever state the test left them in."""
    yield
    engine = create_engine(database_url)
    with engine.connect() as conn:
        env_ids = list(conn.execute(text("SELECT id FROM environments")).scalars())
    engine.dispose()
    for env_id in env_ids:
        remove_engine_objects(docker_client, env_id)


def remove_engine_objects(docker_client, env_id: str) -> None:
    remove_labelled(docker_client, f"io.catalog.env={env_id}")


def fetch(url: str, *, expect: str | None = None, seconds: float = 15) -> str:
    """The body at `url`; with `expect`, polled (bounded) until it holds that text."""
    deadline = time.monotonic() + seconds
    body = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = response.read().decode()
        except OSError:
            body = ""
        if body and (expect is None or expect in body):
            return body
        time.sleep(0.2)
    raise AssertionError(f"{url} answered {body!r}, not {expect!r}, within {seconds} s")
