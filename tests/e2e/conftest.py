"""A real API server (`catalogctl serve` under gunicorn) on the session's PostgreSQL database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from catalog.models import Base

BIN = Path(sys.executable).parent


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
    }
    env.pop("CATALOG_TOKEN", None)
    yield env
    engine = create_engine(database_url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def live_server(service_env):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [BIN / "catalogctl", "serve", "--port", str(port), "--workers", "1", "--no-migrate"],
        env=service_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_healthy(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def catalogctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "catalogctl", *args], env=env, capture_output=True, text=True, timeout=120
    )
