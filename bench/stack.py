"""The catalog as a benchmark runs it (database, API, workers, tracker) and a client of its API.

The database is a fresh one on the PostgreSQL server and the queue one of the run's own on
RabbitMQ; set CATALOG_BENCH_DATABASE_URL / CATALOG_BENCH_BROKER_URL to use other servers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import psycopg2
import requests
from sqlalchemy.engine import make_url

# The repository root is on sys.path: the bench scripts that import this module put it there.
from catalog.models import FINISHED
from catalog.secretbox import new_key
from tests.polling import eventually

MAINTENANCE_URL = os.environ.get(
    "CATALOG_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BROKER_URL = os.environ.get("CATALOG_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A child in its own session, its output in a log file; stopped by its process group."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


class Api:
    """A client of the catalog's API: one session a thread, the environments it created."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.local = threading.local()
        self.env_ids: list[str] = []  # every environment created, for the final cleanup

    @property
    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers.update(self.headers)
        return self.local.session

    def call(self, method: str, path: str, expect=(200, 201, 202, 204), **kw):
        response = self.session.request(method, f"{self.base}{path}", timeout=30, **kw)
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def publish(self, data: bytes) -> None:
        self.call("POST", "/packages", data=data, headers={"Content-Type": "application/gzip"})

    def create_env(self, name: str) -> str:
        env_id = self.call("POST", "/environments", json={"name": name})["id"]
        self.env_ids.append(env_id)
        return env_id

    def add_app(self, env: str, name: str, package: str, version: str) -> None:
        body = {"name": name, "package": package, "version": version}
        self.call("POST", f"/environments/{env}/apps", json=body)

    def deploy(self, env: str) -> int:
        return self.call("POST", f"/environments/{env}/deployments")["revision"]

    def deployment(self, env: str, revision: int) -> dict:
        return self.call("GET", f"/environments/{env}/deployments/{revision}")

    def environment(self, env: str) -> dict:
        return self.call("GET", f"/environments/{env}")

    def wait(
        self, env: str, revision: int, seconds: float = 120, every: float = 0.5
    ) -> tuple[dict, float, float]:
        """Poll until the deployment finishes: (its JSON, when it ended, when that was seen).

        Polls every `every` seconds. Times are time.time(); the end is the deployment's last
        event, which the worker commits with the final status, stamped with the host's clock.
        """
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            deployment = self.deployment(env, revision)
            if deployment["status"] in FINISHED:
                return deployment, ended_at(revision, deployment), time.time()
            time.sleep(every)
        raise RuntimeError(f"revision {revision} of {env} unfinished after {seconds} s")

    def delete_env(self, env: str, seconds: float = 120, *, request: bool = True) -> None:
        """Delete (unless already requested) and wait until the worker has torn it down."""
        if request:
            self.call("DELETE", f"/environments/{env}")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.session.get(f"{self.base}/environments/{env}", timeout=30).status_code == 404:
                return
            time.sleep(0.1)
        raise RuntimeError(f"environment {env} not deleted after {seconds} s")


def ended_at(revision: int, deployment: dict) -> float:
    """When a finished deployment ended: the time of its final event ("revision N is ready",
    "revision N failed: ..."), committed with its final status."""
    final = tuple(f"revision {revision} {end}" for end in ("is ready", "failed", "cancelled"))
    events = deployment["events"]
    if not events or not events[-1]["message"].startswith(final):
        raise RuntimeError(f"revision {revision}: no final event: {events[-3:]}")
    return datetime.fromisoformat(events[-1]["time"]).timestamp()


class Stack:
    """Fresh database, the API on a free port, workers on this run's own queue; the tracker.

    `database_prefix` / `queue_prefix` start the names of the run's database and queue;
    `workers` processes run `catalogctl worker --concurrency <concurrency>`, the first one
    with `--beat` if `beat`; `settings` are CATALOG_* variables for every process on top of
    the stack's own (database, broker, queue, directories, log level WARNING).
    `bootstrap_seconds` bounds `catalogctl admin bootstrap` (None: unbounded) and
    `start_seconds` the wait for the API and the workers to be up.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        database_prefix: str,
        queue_prefix: str,
        workers: int,
        concurrency: int,
        beat: bool = False,
        settings: Mapping[str, str] | None = None,
        bootstrap_seconds: float | None = None,
        start_seconds: float = 60,
    ) -> None:
        self.workdir = workdir
        self.workers = workers
        self.concurrency = concurrency
        self.beat = beat
        self.settings = dict(settings or {})
        self.bootstrap_seconds = bootstrap_seconds
        self.start_seconds = start_seconds
        self.run_id = uuid.uuid4().hex[:8]
        self.db_name = f"{database_prefix}_{os.getpid()}_{self.run_id}"
        self.queue = f"{queue_prefix}-{os.getpid()}-{self.run_id}"
        self.db_url = make_url(MAINTENANCE_URL).set(database=self.db_name)
        self.processes: list[Process] = []
        self.worker_processes: list[Process] = []
        self.tracker: Process | None = None
        self.db_created = False
        self.env: dict[str, str] = {}

    def _admin(self, sql: str) -> None:
        admin = psycopg2.connect(MAINTENANCE_URL)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute(sql)
        finally:
            admin.close()

    def start(self) -> Api:
        """Create the database, bootstrap it, start the API and the workers; wait for them."""
        self._admin(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        self.env = {
            **os.environ,
            "CATALOG_DATABASE_URL": self.db_url.render_as_string(hide_password=False),
            "CATALOG_BROKER_URL": BROKER_URL,
            "CATALOG_TASK_QUEUE": self.queue,
            "CATALOG_BLOB_DIR": str(self.workdir / "blobs"),
            "CATALOG_HOME": str(self.workdir / "home"),
            "CATALOG_LOG_LEVEL": "WARNING",
            # A key of this run's own: secret parameters are stored encrypted.
            "CATALOG_SECRET_KEY": new_key(),
            "CATALOG_READ_RATE_LIMIT": "1000000/minute",  # a benchmark polls as fast as it can
            "CATALOG_SNAPSHOT_IMAGE": "catalog-test/busybox:latest",  # built offline
            **self.settings,
        }
        bootstrap = subprocess.run(
            [BIN / "catalogctl", "admin", "bootstrap"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=self.bootstrap_seconds,
        )
        token = bootstrap.stdout.strip().splitlines()[-1]
        port = free_port()
        self.processes.append(
            Process(
                [BIN / "catalogctl", "serve", "--workers", "2", "--port", str(port)],
                self.env,
                self.workdir / "api.log",
            )
        )
        worker_argv = [BIN / "catalogctl", "worker", "--concurrency", str(self.concurrency)]
        for i in range(self.workers):
            argv = [*worker_argv, "--loglevel", "INFO"]
            if self.beat and i == 0:
                argv.append("--beat")
            worker = Process(argv, self.env, self.workdir / f"worker-{i}.log")
            self.processes.append(worker)
            self.worker_processes.append(worker)
        api = Api(f"http://127.0.0.1:{port}/v1", token)

        def up() -> bool:
            for process in self.processes:
                if not process.alive():
                    raise RuntimeError(f"{process.log_path.name} exited:\n{process.tail()}")
            api_up = False
            with contextlib.suppress(requests.RequestException):
                api_up = requests.get(f"{api.base}/health", timeout=2).status_code == 200
            return api_up and all(
                " ready." in p.log_path.read_text() for p in self.worker_processes
            )

        eventually(up, self.start_seconds, "the API and the workers start", every=0.2)
        return api

    def start_tracker(self) -> Process:
        """Start `catalogctl tracker` and wait until it follows the engine's events."""
        self.tracker = Process(
            [BIN / "catalogctl", "tracker", "--loglevel", "INFO"],
            self.env,
            self.workdir / "tracker.log",
        )
        self.processes.append(self.tracker)

        def following() -> bool:
            if not self.tracker.alive():
                raise RuntimeError(f"the tracker exited:\n{self.tracker.tail()}")
            return "following engine events" in self.tracker.log_path.read_text()

        eventually(following, 60, "the tracker follows engine events", every=0.2)
        return self.tracker

    def env_ids(self) -> list[str]:
        """Every environment of this run's database (for the cleanup)."""
        if not self.db_created:
            return []
        conn = psycopg2.connect(self.db_url.render_as_string(hide_password=False))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM environments")
                return [row[0] for row in cur.fetchall()]
        except psycopg2.Error:
            return []
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop every process (the tracker too, before the caller removes the containers)."""
        for process in self.processes:
            with contextlib.suppress(Exception):
                process.stop()

    def drop(self) -> None:
        """Drop the run's database and delete its queue."""
        if self.db_created:
            self._admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        with contextlib.suppress(Exception):
            from kombu import Connection

            with Connection(BROKER_URL) as conn:
                conn.default_channel.queue_delete(self.queue)
