"""The real services the suite depends on answer, as `make test` promises."""

from __future__ import annotations

import psycopg2
from kombu import Connection

from tests.conftest import BROKER_URL, DATABASE_URL, TEST_IMAGE


def test_postgresql_answers():
    with psycopg2.connect(DATABASE_URL, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("select 1")
        assert cur.fetchone() == (1,)


def test_rabbitmq_answers():
    with Connection(BROKER_URL, connect_timeout=5) as conn:
        conn.ensure_connection(max_retries=1)
        assert conn.connected


def test_docker_runs_a_container_from_the_offline_image(docker_client, engine_labels):
    container = docker_client.containers.run(
        TEST_IMAGE, ["sh", "-c", "echo ok"], labels=engine_labels, detach=True
    )
    assert container.wait(timeout=30)["StatusCode"] == 0
    assert container.logs().strip() == b"ok"
    container.remove()
    assert not docker_client.containers.list(all=True, filters={"id": container.id})
