"""API fixtures on real PostgreSQL: the app on the session's database, emptied after each test."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import yaml
from sqlalchemy import text

from catalog import create_app, settings_of
from catalog.auth import Principal
from catalog.models import Base
from catalog.services import tenants
from tests.conftest import BROKER_URL, TASK_QUEUE, TEST_IMAGE, TEST_SECRET_KEY, remove_labelled
from tests.integration.stack import TEST_NETWORK_POOL, TEST_PORT_RANGE, Deployer, WorkerProcess


@pytest.fixture
def app_config() -> dict:
    """Settings a module or a test changes for its app: override this fixture or parametrize it."""
    return {}


@pytest.fixture
def app(database_url, tmp_path, app_config):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "BLOB_DIR": str(tmp_path / "blobs"),
            "CATALOG_HOME": str(tmp_path),
            "UPLOAD_RATE_LIMIT": "10000/minute",
            "READ_RATE_LIMIT": "100000/minute",
            "AUTH_FAILURE_RATE_LIMIT": "100000/minute",
            "BROKER_URL": BROKER_URL,
            "TASK_QUEUE": TASK_QUEUE,
            "SECRET_KEY": TEST_SECRET_KEY,
            **app_config,
        }
    )
    yield app
    for docker_client in app.extensions["catalog"].get("docker", {}).values():
        docker_client.close()
    engine = app.extensions["catalog"]["engine"]
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    app.extensions["catalog"]["read_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass(frozen=True)
class Caller:
    """A token for tests: its secret, tenant and role, and ready-made headers."""

    secret: str
    tenant: str
    role: str
    token_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


@pytest.fixture
def make_caller(app) -> Callable[[str, str], Caller]:
    """make_caller(tenant, role): a tenant (created if new) and a token for it."""
    sessionmaker = app.extensions["catalog"]["sessionmaker"]
    with sessionmaker() as session:
        root_secret = tenants.bootstrap_admin(session)
    with sessionmaker() as session:
        from catalog.auth import authenticate

        root: Principal = authenticate(session.connection(), root_secret)

    def make(tenant: str, role: str) -> Caller:
        with sessionmaker() as session:
            try:
                tenants.find_tenant(session, tenant)
            except Exception:
                tenants.create_tenant(session, root, tenant)
            token, secret = tenants.issue_token(session, root, tenant, role)
            return Caller(secret, tenant, role, token.id)

    return make


def manifest_doc(name: str = "org.acme.web", version: str = "1.0.0", **extra) -> dict:
    doc = {
        "format": "catalog/v1",
        "name": name,
        "version": version,
        "type": "application",
        "title": extra.pop("title", "Web"),
        "description": extra.pop("description", "A web server"),
        "tags": extra.pop("tags", ["web"]),
        "services": {
            "web": {
                "image": "catalog-test/busybox:latest",
                "command": ["httpd", "-f", "-p", "8080"],
                "ports": [{"container": 8080, "publish": True}],
            }
        },
    }
    doc.update(extra)
    return doc


def package_bytes(name: str = "org.acme.web", version: str = "1.0.0", **extra) -> bytes:
    """A valid tar.gz package built in memory."""
    import tarfile

    files = extra.pop("files", {})
    members = {"manifest.yaml": yaml.safe_dump(manifest_doc(name, version, **extra)).encode()}
    members.update(files)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, data in sorted(members.items()):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def published_tasks():
    """A function returning [(task name, args)] published to this run's queue (or the queue
    named) since the last call.

    Reads the real RabbitMQ queue; the queue is emptied first so earlier tests don't count.
    """
    from kombu import Connection

    def drain(name: str = TASK_QUEUE) -> list[tuple[str, list]]:
        found = []
        with Connection(BROKER_URL) as conn:
            queue = conn.SimpleQueue(name)
            try:
                while True:
                    try:
                        message = queue.get(block=True, timeout=0.2)
                    except queue.Empty:
                        break
                    args = message.decode()[0]
                    found.append((message.headers["task"], args))
                    message.ack()
            finally:
                queue.close()
        return found

    drain()
    return drain


@pytest.fixture
def worker_env(app, tmp_path) -> dict[str, str]:
    """What a worker process needs to serve this test's app: same database, blobs and queue."""
    env = {
        **os.environ,
        "CATALOG_DATABASE_URL": settings_of(app).database_url,
        "CATALOG_BROKER_URL": BROKER_URL,
        "CATALOG_TASK_QUEUE": TASK_QUEUE,
        "CATALOG_SECRET_KEY": settings_of(app).secret_key,
        "CATALOG_BLOB_DIR": settings_of(app).blob_dir,
        "CATALOG_HOME": str(tmp_path / "worker-home"),
        "CATALOG_HOST_PORT_RANGE": TEST_PORT_RANGE,
        "CATALOG_NETWORK_POOL": TEST_NETWORK_POOL,
        "CATALOG_MIN_RUNNING_SECONDS": "0.5",
        "CATALOG_RESYNC_SECONDS": "2",
        # The helper image of volume snapshots (the default, the catalog's own, is not built).
        "CATALOG_SNAPSHOT_IMAGE": TEST_IMAGE,
    }
    return env


@pytest.fixture
def start_worker(worker_env, tmp_path):
    """start_worker(concurrency=1, beat=False) -> a ready WorkerProcess; all stopped afterwards.

    `beat=True` runs the periodic resync in the worker (`catalogctl worker --beat`); `args`:
    more options of `catalogctl worker`.
    """
    started: list[WorkerProcess] = []

    def start(
        concurrency: int = 1,
        *,
        wait: bool = True,
        beat: bool = False,
        args: tuple[str, ...] = (),
        **overrides: str,
    ) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess({**worker_env, **overrides}, log, concurrency, beat=beat, args=args)
        started.append(worker)
        return worker.wait_ready() if wait else worker

    yield start
    for worker in started:  # all at once: a warm shutdown takes a few seconds
        worker.terminate()
    for worker in started:
        worker.stop()


@pytest.fixture
def deployer(app, client, make_caller, docker_client):
    """A deployer-publisher of tenant `acme`; every engine object of its environments goes after."""
    caller = make_caller("acme", "publisher")
    driver = Deployer(client, caller.headers)
    yield driver
    for env_id in driver.env_ids:
        remove_labelled(docker_client, f"io.catalog.env={env_id}")
