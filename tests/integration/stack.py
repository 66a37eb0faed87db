"""Real worker processes and a driver for deploy tests: publish, compose, deploy, wait."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packages.build import write_archive

BIN = Path(sys.executable).parent
# Host ports for tests, away from the embedded default range (another range for a second run
# on the same engine at the same time).
TEST_PORT_RANGE = os.environ.get("CATALOG_TEST_PORT_RANGE", "31000-31999")
# Subnets of environment networks for tests, away from the default pool: a subnet from it
# shows the worker read its CATALOG_NETWORK_POOL.
TEST_NETWORK_POOL = os.environ.get("CATALOG_TEST_NETWORK_POOL", "10.214.0.0/16")


class WorkerProcess:
    """`catalogctl worker` as a real process; its log is kept for the failure message."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        concurrency: int = 1,
        *,
        beat: bool = False,
        args: tuple[str, ...] = (),
    ) -> None:
        self.log_path = log_path
        self.log = log_path.open("w")
        command = [BIN / "catalogctl", "worker", f"--concurrency={concurrency}", "--loglevel=INFO"]
        if beat:  # the embedded scheduler of the periodic resync
            command.append("--beat")
        command += args
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so kill() reaches the pool's children too
        )

    def wait_ready(self, seconds: float = 60) -> WorkerProcess:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_path.read_text()[-3000:]}")
            if " ready." in self.log_path.read_text():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready in {seconds} s:\n{self.log_path.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the main process and its pool children)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def terminate(self) -> None:
        """Ask for a warm shutdown without waiting for it (stop() waits)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def archive_of(directory: Path) -> bytes:
    buf = io.BytesIO()
    write_archive(directory, buf)
    return buf.getvalue()


@dataclass
class Deployer:
    """Drives the API like a user: publish, create an environment, add apps, deploy, wait."""

    client: Any
    headers: dict[str, str]
    env_ids: list[str] = field(default_factory=list)

    def call(
        self, method: str, path: str, expect: int | tuple[int, ...] = (200, 201, 202, 204), **kw
    ):
        headers = kw.pop("headers", self.headers)
        response = self.client.open(f"/v1{path}", method=method, headers=headers, **kw)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in wanted, (
            method,
            path,
            response.status_code,
            response.get_json(),
        )
        return response.get_json()

    def publish(self, source: Path | bytes, *, public: bool = False) -> dict:
        data = archive_of(source) if isinstance(source, Path) else source
        query = "?visibility=public" if public else ""
        return self.call(
            "POST", f"/packages{query}", data=data,
            headers={**self.headers, "Content-Type": "application/gzip"},
        )  # fmt: skip

    def create_env(self, name: str, settings: dict | None = None) -> dict:
        env = self.call("POST", "/environments", json={"name": name, "settings": settings or {}})
        self.env_ids.append(env["id"])
        return env

    def add_app(self, env: str, name: str, package: str, **fields) -> dict:
        return self.call(
            "POST", f"/environments/{env}/apps", json={"name": name, "package": package, **fields}
        )

    def deploy(self, env: str, **body) -> int:
        return self.call("POST", f"/environments/{env}/deployments", json=body)["revision"]

    def deployment(self, env: str, revision: int) -> dict:
        return self.call("GET", f"/environments/{env}/deployments/{revision}")

    def environment(self, env: str) -> dict:
        return self.call("GET", f"/environments/{env}")

    def wait(self, env: str, revision: int, seconds: float = 90) -> dict:
        """Poll until the deployment finishes (bounded); its JSON with events."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            deployment = self.deployment(env, revision)
            if deployment["status"] in ("succeeded", "failed", "rolled_back", "cancelled"):
                return deployment
            time.sleep(0.2)
        raise AssertionError(
            f"revision {revision} of {env} unfinished after {seconds} s: {deployment}"
        )

    def endpoint(self, env: str, app: str, service: str | None = None) -> tuple[str, int]:
        for item in self.environment(env)["apps"]:
            if item["name"] == app:
                for endpoint in item["endpoints"]:
                    if service is None or endpoint["service"] == service:
                        return endpoint["host"], endpoint["port"]
        raise AssertionError(f"no endpoint for {env}/{app}")
