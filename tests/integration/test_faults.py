"""Queue and worker faults on the real broker, engine and database (TEST_PLAN A1-A9).

After every fault the environment must converge (the containers carrying its
label are exactly its current revision's), with never two containers for one
(env, app, service, replica), and no accepted deploy lost.

A RabbitMQ restart stops the shared broker for a few seconds: only the tests
that need one do it, and the `broker` fixture brings it back whatever happens.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import pytest
from sqlalchemy import select

from catalog.models import EnvironmentLease
from catalog.queue import DEPLOY_TASK, make_celery
from tests.conftest import BROKER_URL, TASK_QUEUE
from tests.integration.conftest import package_bytes
from tests.integration.stack import WorkerProcess

pytestmark = pytest.mark.docker

T = TypeVar("T")

CHAIN = "org.acme.chain"
SERVICES = ("a", "b", "c")
ENV_LABEL = "io.catalog.env"
FAST_LEASE = "3"  # seconds: a dead worker's lease expires quickly in these tests


# -- helpers --------------------------------------------------------------------------


def wait_for(check: Callable[[], T], *, timeout: float, what: str, every: float = 0.1) -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def chain_package(version: str = "1.0.0") -> bytes:
    """Three services a <- b <- c, each listening only after `delay` seconds (tcp healthcheck).

    Started in dependency order and each gated on its healthcheck, a deploy takes about
    3 x delay: slow enough to fault in the middle. `mark` lands in every container's
    environment, so changing it replaces all three.
    """
    service = {
        "image": "catalog-test/busybox:latest",
        "command": ["sh", "-c", "sleep {{ params.delay }}; exec httpd -f -p 8080"],
        "environment": {"MARK": "{{ params.mark }}"},
        "ports": [{"container": 8080}],
        "healthcheck": {"tcp": {"port": 8080}, "interval": "1s", "retries": 30},
        "resources": {"memory": "32m", "cpus": 0.25, "pids": 64},
    }
    return package_bytes(
        CHAIN,
        version,
        parameters={
            "type": "object",
            "properties": {
                "delay": {"type": "string", "default": "1", "pattern": "^[0-9.]+$"},
                "mark": {"type": "string", "default": "one"},
            },
        },
        services={
            "a": service,
            "b": {**service, "depends_on": ["a"]},
            "c": {**service, "depends_on": ["b"]},
        },
    )


def containers_of(docker_client, env_id: str) -> list:
    return docker_client.containers.list(all=True, filters={"label": f"{ENV_LABEL}={env_id}"})


def slot(container) -> tuple[str, str, str]:
    labels = container.labels
    return (labels["io.catalog.app"], labels["io.catalog.service"], labels["io.catalog.replica"])


def assert_no_duplicates(containers: list) -> None:
    """Never two containers for one (env, app, service, replica)."""
    counts = Counter(slot(c) for c in containers)
    duplicates = {s: n for s, n in counts.items() if n > 1}
    assert not duplicates, f"duplicate containers per slot: {duplicates}"


def assert_converged(deployer, docker_client, env: dict, revision: int, mark: str = "one"):
    """The environment is `ready` at `revision`; its containers are exactly that revision's.

    Every deploy in this file replaces all three services, so each container must carry the
    revision's label and `mark`, be running, and be the only one of its slot.
    """
    view = deployer.environment(env["name"])
    assert view["status"] == "ready", view
    assert view["current_revision"] == revision, view
    containers = containers_of(docker_client, env["id"])
    assert_no_duplicates(containers)
    assert sorted(slot(c) for c in containers) == [("chain", s, "0") for s in SERVICES]
    for container in containers:
        assert container.status == "running", (container.name, container.status)
        assert container.labels["io.catalog.revision"] == str(revision), container.labels
        assert f"MARK={mark}" in container.attrs["Config"]["Env"], container.attrs["Config"]["Env"]
    networks = docker_client.networks.list(filters={"label": f"{ENV_LABEL}={env['id']}"})
    assert len(networks) == 1, [n.name for n in networks]
    return containers


def chain_env(deployer, name: str, **parameters: str) -> dict:
    env = deployer.create_env(name)
    deployer.add_app(name, "chain", CHAIN, parameters=parameters)
    return env


def first_container(docker_client, env_id: str, revision: int, timeout: float = 30):
    """The first container the revision created (polled), once it exists."""

    def find():
        return [
            c
            for c in containers_of(docker_client, env_id)
            if c.labels.get("io.catalog.revision") == str(revision)
        ]

    return wait_for(find, timeout=timeout, what=f"a container of revision {revision}")[0]


def lease_row(app, env_id: str) -> EnvironmentLease | None:
    with app.extensions["catalog"]["sessionmaker"]() as session:
        return session.scalar(
            select(EnvironmentLease).where(EnvironmentLease.environment_id == env_id)
        )


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def events(deployment: dict, pattern: str) -> list[dict]:
    return [e for e in deployment["events"] if re.search(pattern, e["message"])]


def task_outcome(worker: WorkerProcess, task_id: str) -> str | None:
    """What the worker logged as the task's result ('skipped', 'succeeded'...), once finished."""
    match = re.search(
        rf"Task {re.escape(DEPLOY_TASK)}\[{task_id}\] succeeded in [0-9.]+s: '(\w+)'",
        worker.log_path.read_text(),
    )
    return match.group(1) if match else None


# -- the broker -----------------------------------------------------------------------


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def broker_port_open() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=0.5):
            return True
    except OSError:
        return False


class Broker:
    """Stop and start the shared RabbitMQ; the fixture restarts it whatever the test did."""

    def stop(self) -> None:
        rabbitmqctl("stop_app")
        wait_for(lambda: not broker_port_open(), timeout=30, what="the broker to stop listening")

    def start(self) -> None:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
        wait_for(broker_port_open, timeout=60, what="the broker to listen on 5672")

    def queue_depth(self, queue: str = TASK_QUEUE) -> tuple[int, bool]:
        """(ready + unacked messages, durable) of the queue."""
        for line in rabbitmqctl("list_queues", "name", "messages", "durable").splitlines():
            fields = line.split()
            if fields and fields[0] == queue:
                return int(fields[1]), fields[2] == "true"
        raise AssertionError(f"queue {queue} not found")

    def close_connections_of(self, worker: WorkerProcess) -> int:
        """Close every broker connection of the worker's process group; how many were closed."""
        ports = local_broker_ports(worker.process.pid)
        closed = 0
        for line in rabbitmqctl("list_connections", "pid", "peer_port").splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[1].isdigit() and int(fields[1]) in ports:
                rabbitmqctl("close_connection", fields[0], "test: connection dropped")
                closed += 1
        return closed


@pytest.fixture
def broker():
    control = Broker()
    yield control
    if not broker_port_open():
        control.start()


def process_group(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.append(int(entry))
            except ProcessLookupError:
                continue
    return pids


def local_broker_ports(pgid: int) -> set[int]:
    """Local ports of the TCP connections to 5672 held by a process group."""
    inodes = set()
    for pid in process_group(pgid):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == 5672:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


# -- A1 -------------------------------------------------------------------------------


def test_a1_kill_9_mid_deploy_then_a_new_worker_converges_without_duplicates(
    app, deployer, docker_client, start_worker
):
    deployer.publish(chain_package())
    env = chain_env(deployer, "a1", delay="1.5")
    first = start_worker(CATALOG_LEASE_SECONDS=FAST_LEASE)

    revision = deployer.deploy("a1")
    started = first_container(docker_client, env["id"], revision)
    first.kill()  # SIGKILL to the whole process group: no ack, no release, no undo
    killed_at = time.time()
    held = lease_row(app, env["id"])  # as the dead worker left it: nobody renews it now

    left = containers_of(docker_client, env["id"])
    assert len(left) < len(SERVICES), "the deploy was not interrupted in the middle"
    assert held.owner is not None and held.fencing >= 1
    old_fencing = int(started.labels["io.catalog.fencing"])
    assert old_fencing == held.fencing
    assert deployer.deployment("a1", revision)["status"] == "running"

    start_worker(CATALOG_LEASE_SECONDS=FAST_LEASE)
    deployment = deployer.wait("a1", revision, seconds=60)

    assert deployment["status"] == "succeeded", deployment["events"]
    assert deployment["attempts"] == 2, deployment
    containers = assert_converged(deployer, docker_client, env, revision)
    fencing = {int(c.labels["io.catalog.fencing"]) for c in containers}
    assert fencing == {old_fencing + 1}, "the new worker's fencing token is higher"
    assert started.id not in {c.id for c in containers}, "the dead attempt's container is gone"
    # The second attempt began only once the dead worker's lease had expired.
    (second,) = events(deployment, r"started \(attempt 2\)")
    assert parse_time(second["time"]).timestamp() >= held.expires_at.timestamp() - 0.05
    assert parse_time(second["time"]).timestamp() >= killed_at - 0.05
    after = lease_row(app, env["id"])
    assert after.owner is None and after.fencing == old_fencing + 1


# -- A2 -------------------------------------------------------------------------------


def test_a2_no_worker_the_deploy_waits_never_ready_then_a_worker_runs_it(
    deployer, docker_client, start_worker
):
    deployer.publish(chain_package())
    env = chain_env(deployer, "a2", delay="0.3")
    revision = deployer.deploy("a2")

    # No worker for a while: recorded, waiting, nothing on the engine, never `ready`.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        view = deployer.environment("a2")
        assert view["status"] == "deploying", view
        assert view["current_revision"] is None, view
        assert deployer.deployment("a2", revision)["status"] == "queued"
        assert containers_of(docker_client, env["id"]) == []
        time.sleep(0.2)

    start_worker()
    # Until the deployment has succeeded the environment never says `ready`.
    deadline = time.monotonic() + 60
    while True:
        view = deployer.environment("a2")
        deployment = deployer.deployment("a2", revision)
        if view["status"] == "ready":
            assert deployment["status"] == "succeeded", (view, deployment)
            break
        assert view["status"] == "deploying", view
        assert deployment["status"] in ("queued", "running"), deployment
        assert time.monotonic() < deadline, f"not ready in 60 s: {deployment}"
        time.sleep(0.05)
    assert_converged(deployer, docker_client, env, revision)
