"""Shared fixtures: the real services the suite runs against, and cleanup by label."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

import docker.errors
import psycopg2
import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TEST_IMAGE = os.environ.get("CATALOG_TEST_IMAGE", "catalog-test/busybox:latest")
DATABASE_URL = os.environ.get(
    "CATALOG_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BROKER_URL = os.environ.get("CATALOG_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")

# The key of secret parameters at rest for every app, worker and CLI the suite starts (a
# Fernet key: 32 bytes, url-safe base64).
TEST_SECRET_KEY = "dGVzdC1zZWNyZXQta2V5LW9mLXRoZS1zdWl0ZS0wMDA="

# This run's own broker queue, so no other run's messages reach its workers.
TASK_QUEUE = f"catalog-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"

# Every engine object a test creates carries this label, so a finalizer can find it.
TEST_LABEL = "io.catalog.test-run"


@pytest.fixture(scope="session")
def docker_client():
    """A client of the real engine; the run fails (never skips) when none answers."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
        client.images.get(TEST_IMAGE)
    except Exception as exc:
        pytest.fail(
            f"the Docker engine or the test image {TEST_IMAGE} is not available ({exc}); "
            "run `make services` (scripts/ensure-services.sh and scripts/build-test-images.sh)",
            pytrace=False,
        )
    yield client
    client.close()


@pytest.fixture
def engine_labels(docker_client):
    """Labels for this test's engine objects; everything carrying them is removed afterwards."""
    run_id = uuid.uuid4().hex[:12]
    yield {TEST_LABEL: run_id}
    remove_labelled(docker_client, f"{TEST_LABEL}={run_id}")


def remove_labelled(docker_client, label: str) -> None:
    """Every container, network and volume carrying `label` ("key=value") goes."""
    selector = {"label": label}
    for container in docker_client.containers.list(all=True, filters=selector):
        container.remove(force=True, v=True)
    for network in docker_client.networks.list(filters=selector):
        remove_network(docker_client, network)
    for volume in docker_client.volumes.list(filters=selector):
        volume.remove(force=True)


def remove_network(docker_client, network, attempts: int = 20) -> None:
    """`network` goes, with whatever is still attached to it.

    A container removed a moment ago can leave its endpoint behind for a while (the engine
    releases it asynchronously), and a container started meanwhile holds one: each attempt
    removes the containers it names and force-disconnects what stays.
    """
    for attempt in range(attempts):
        try:
            network.reload()
        except docker.errors.NotFound:
            return
        for endpoint in network.attrs.get("Containers") or {}:
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.containers.get(endpoint).remove(force=True, v=True)
            with contextlib.suppress(docker.errors.APIError):
                network.disconnect(endpoint, force=True)
        try:
            network.remove()
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)


@pytest.fixture(scope="session")
def database_url():
    """A fresh database migrated to head; dropped at the end of the session."""
    name = f"catalog_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    # A connection per statement: a test may restart PostgreSQL in between (C18).
    _admin_execute(f'CREATE DATABASE "{name}"')
    url = make_url(DATABASE_URL).set(database=name)
    url_text = url.render_as_string(hide_password=False)
    from catalog.migrate import upgrade

    upgrade(url_text)
    yield url_text
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_execute(statement: str) -> None:
    admin = psycopg2.connect(DATABASE_URL)
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(statement)
    finally:
        admin.close()
