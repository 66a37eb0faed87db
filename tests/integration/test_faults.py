"""Queue and worker faults on the real broker, engine and database (TEST_PLAN A1-A9).

After every fault the environment must converge (the containers carrying its
label are exactly its current revision's), with never two containers for one
(env, app, service, replica), and no accepted deploy lost.

A RabbitMQ restart stops the shared broker for a few seconds: only the tests
that need one do it, and the `broker` fixture brings it back whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from catalog import settings_of
from catalog.models import EnvironmentLease
from catalog.queue import DEPLOY_TASK, Publisher, make_celery
from tests.conftest import TASK_QUEUE
from tests.integration.conftest import package_bytes
from tests.integration.stack import WorkerProcess
from tests.polling import eventually
from workers.resync import republish_stale

pytestmark = pytest.mark.docker


CHAIN = "org.acme.chain"
SERVICES = ("a", "b", "c")
ENV_LABEL = "io.catalog.env"
FAST_LEASE = "3"  # seconds: a dead worker's lease expires quickly in these tests
ACTIVE_OR_DONE = ("queued", "running", "succeeded")


# -- helpers --------------------------------------------------------------------------


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


def containers_of(docker_client, env_id: str) -> list[dict]:
    """The engine's summaries (Id, Names, Labels, State) of the environment's containers.

    One list call, no inspect per container: a container removed meanwhile cannot fail it.
    """
    return docker_client.api.containers(all=True, filters={"label": f"{ENV_LABEL}={env_id}"})


def label(container: dict, name: str) -> str | None:
    return (container.get("Labels") or {}).get(f"io.catalog.{name}")


def name_of(container: dict) -> str:
    return container["Names"][0].lstrip("/")


def slot(container: dict) -> tuple[str, str, str]:
    return (label(container, "app"), label(container, "service"), label(container, "replica"))


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
        assert container["State"] == "running", (name_of(container), container["State"])
        assert label(container, "revision") == str(revision), container["Labels"]
        environment = docker_client.api.inspect_container(container["Id"])["Config"]["Env"]
        assert f"MARK={mark}" in environment, (name_of(container), environment)
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
            c for c in containers_of(docker_client, env_id) if label(c, "revision") == str(revision)
        ]

    return eventually(find, seconds=timeout, what=f"a container of revision {revision}")[0]


def lease_row(app, env_id: str) -> EnvironmentLease | None:
    with app.extensions["catalog"]["sessionmaker"]() as session:
        return session.scalar(
            select(EnvironmentLease).where(EnvironmentLease.environment_id == env_id)
        )


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def events(deployment: dict, pattern: str) -> list[dict]:
    return [e for e in deployment["events"] if re.search(pattern, e["message"])]


def task_outcomes(worker: WorkerProcess, task_id: str) -> list[str]:
    """What the worker logged as the task's results ('skipped', 'succeeded'...), in order.

    A Celery retry keeps the task id, so one delivery may end several times in a log.
    """
    return re.findall(
        rf"Task {re.escape(DEPLOY_TASK)}\[{task_id}\] succeeded in [0-9.]+s: '(\w+)'",
        worker.log_path.read_text(),
    )


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
        eventually(lambda: not broker_port_open(), seconds=30, what="the broker to stop listening")

    def start(self) -> None:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
        eventually(broker_port_open, seconds=60, what="the broker to listen on 5672")

    def queue_depth(self, queue: str = TASK_QUEUE) -> tuple[int, bool]:
        """(ready + unacked messages, durable) of the queue."""
        for line in rabbitmqctl("list_queues", "name", "messages", "durable").splitlines():
            fields = line.split()
            if fields and fields[0] == queue:
                return int(fields[1]), fields[2] == "true"
        raise AssertionError(f"queue {queue} not found")

    def connections_of(self, worker: WorkerProcess) -> list[str]:
        """The broker's ids of every connection of the worker's process group."""
        ports = local_broker_ports(worker.process.pid)
        found = []
        for line in rabbitmqctl("list_connections", "pid", "peer_port").splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[1].isdigit() and int(fields[1]) in ports:
                found.append(fields[0])
        return found

    def close(self, connections: list[str]) -> None:
        """Close connections from the broker's side, all at once (rabbitmqctl takes ~1 s)."""
        calls = [
            subprocess.Popen(["rabbitmqctl", "-q", "close_connection", pid, "test: dropped"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for pid in connections
        ]  # fmt: skip
        for call in calls:
            output, _ = call.communicate(timeout=60)
            assert call.returncode == 0, output


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
    old_fencing = int(label(started, "fencing"))
    assert old_fencing == held.fencing
    assert deployer.deployment("a1", revision)["status"] == "running"

    start_worker(CATALOG_LEASE_SECONDS=FAST_LEASE)
    deployment = deployer.wait("a1", revision, seconds=60)

    assert deployment["status"] == "succeeded", deployment["events"]
    assert deployment["attempts"] == 2, deployment
    containers = assert_converged(deployer, docker_client, env, revision)
    # Every container the new worker created carries its higher token; a running leftover of
    # the dead attempt with the wanted config may be kept, but only once it proved ready.
    created = [c for c in containers if c["Id"] not in {old["Id"] for old in left}]
    assert created, "the new worker started the rest of the revision"
    assert {label(c, "fencing") for c in created} == {str(old_fencing + 1)}
    for kept in (c for c in containers if c["Id"] in {old["Id"] for old in left}):
        assert label(kept, "fencing") == str(old_fencing)
        assert events(deployment, rf"{name_of(kept)} ready in .*left by an interrupted attempt"), (
            deployment["events"]
        )
    # The second attempt began only once the dead worker's lease had expired.
    (second,) = events(deployment, r"started \(attempt 2\)")
    assert parse_time(second["time"]).timestamp() >= held.expires_at.timestamp() - 0.05
    assert parse_time(second["time"]).timestamp() >= killed_at - 0.05
    after = lease_row(app, env["id"])
    assert after.owner is None and after.fencing == old_fencing + 1


def stuck_package() -> bytes:
    """`a` never listens (its healthcheck window is ~4 s); `b` depends on it and is fine."""
    never = {
        "image": "catalog-test/busybox:latest",
        "command": ["sleep", "3600"],
        "ports": [{"container": 8080}],
        "healthcheck": {"tcp": {"port": 8080}, "interval": "1s", "timeout": "1s", "retries": 2},
        "resources": {"memory": "32m", "cpus": 0.25, "pids": 64},
    }
    fine = {**never, "command": ["httpd", "-f", "-p", "8080"], "depends_on": ["a"]}
    return package_bytes("org.acme.stuck", "1.0.0", services={"a": never, "b": fine})


def test_a1_a_dead_attempts_unready_container_is_not_trusted_by_the_next_attempt(
    app, deployer, docker_client, start_worker
):
    """Killed while `a` waits for its healthcheck: the retry must not keep `a` unverified."""
    deployer.publish(stuck_package())
    env = deployer.create_env("a1-stuck")
    deployer.add_app("a1-stuck", "stuck", "org.acme.stuck")
    first = start_worker(CATALOG_LEASE_SECONDS=FAST_LEASE)
    revision = deployer.deploy("a1-stuck")
    first_container(docker_client, env["id"], revision)
    first.kill()

    start_worker(CATALOG_LEASE_SECONDS=FAST_LEASE)
    deployment = deployer.wait("a1-stuck", revision, seconds=60)

    assert deployment["status"] == "failed", deployment
    assert deployment["attempts"] == 2, deployment
    assert events(deployment, r"failed: .*healthcheck|not ready"), deployment["events"]
    view = deployer.environment("a1-stuck")
    assert view["status"] == "deploy_failed", view
    assert containers_of(docker_client, env["id"]) == [], "nothing of the failed revision stays"


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
    # Until the deployment has succeeded the environment never says `ready`: the environment
    # is read first, so a `ready` one must show a succeeded deployment right after.
    deadline = time.monotonic() + 60
    while True:
        view = deployer.environment("a2")
        deployment = deployer.deployment("a2", revision)
        if view["status"] == "ready":
            assert deployment["status"] == "succeeded", (view, deployment)
            break
        assert view["status"] == "deploying", view
        assert view["current_revision"] is None, view
        assert deployment["status"] in ACTIVE_OR_DONE, deployment
        assert time.monotonic() < deadline, f"not ready in 60 s: {deployment}"
        time.sleep(0.05)
    assert_converged(deployer, docker_client, env, revision)


# -- A3 -------------------------------------------------------------------------------


@pytest.mark.parametrize("workers_first", [True, False], ids=["workers-running", "workers-later"])
def test_a3_two_deploys_10ms_apart_are_serialised_and_the_later_revision_wins(
    deployer, docker_client, start_worker, workers_first
):
    """Two workers; the second request changes every container (`mark`).

    workers-running: the first revision is usually taken at once, the second waits for the
    lease. workers-later: both are queued when the workers start, so the first is superseded.
    """
    deployer.publish(chain_package())
    env = chain_env(deployer, "a3", delay="0.3")
    if workers_first:
        start_worker()
        start_worker()

    began = time.monotonic()
    first = deployer.deploy("a3")
    deployer.call("PATCH", "/environments/a3/apps/chain",
                  json={"parameters": {"delay": "0.3", "mark": "two"}})  # fmt: skip
    second = deployer.deploy("a3")
    gap = time.monotonic() - began
    assert gap < 1.0, f"the two requests were {gap:.3f} s apart"

    if not workers_first:
        start_worker()
        start_worker()
    later = deployer.wait("a3", second, seconds=60)
    earlier = deployer.wait("a3", first, seconds=10)

    assert later["status"] == "succeeded", later["events"]
    assert later["attempts"] == 1, later
    assert earlier["status"] in ("succeeded", "cancelled"), earlier
    if earlier["status"] == "cancelled":
        assert earlier["error"] == f"superseded by revision {second}", earlier
        assert earlier["attempts"] == 0, "a superseded revision never touches the engine"
    else:  # serialised: the later one started only after the earlier one had finished
        assert parse_time(earlier["finished_at"]) <= parse_time(later["started_at"])
    if not workers_first:
        assert earlier["status"] == "cancelled", earlier
    assert_converged(deployer, docker_client, env, second, mark="two")


# -- A4 -------------------------------------------------------------------------------


def send_deploy(app, env_id: str, revision: int) -> str:
    """Publish the deploy message again, as a redelivery would; the Celery task id."""
    celery = app.extensions["catalog"]["publisher"].celery
    return celery.send_task(DEPLOY_TASK, args=[env_id, revision]).id


def test_a4_the_same_message_twice_the_second_run_creates_nothing(
    app, deployer, docker_client, start_worker
):
    deployer.publish(chain_package())
    env = chain_env(deployer, "a4", delay="1")
    worker = start_worker(concurrency=2)  # a second pool process free to take the duplicate
    revision = deployer.deploy("a4")

    # Delivered again while the first delivery is running: it backs off on the lease.
    first_container(docker_client, env["id"], revision)
    while_running = send_deploy(app, env["id"], revision)
    deployment = deployer.wait("a4", revision, seconds=60)
    assert deployment["status"] == "succeeded", deployment["events"]
    ids = {c["Id"] for c in assert_converged(deployer, docker_client, env, revision)}
    outcome = eventually(lambda: task_outcomes(worker, while_running), seconds=30,
                       what="the duplicate delivered while running to finish")  # fmt: skip
    assert outcome == ["skipped"]
    assert re.search(rf"\[{while_running}\] retry: Retry in", worker.log_path.read_text()), (
        "the duplicate arrived while the deploy ran and waited for the lease"
    )

    # Delivered again after the revision finished: skipped at once.
    after_finish = send_deploy(app, env["id"], revision)
    outcome = eventually(lambda: task_outcomes(worker, after_finish), seconds=30,
                       what="the duplicate delivered after the end to finish")  # fmt: skip
    assert outcome == ["skipped"]

    assert {c["Id"] for c in assert_converged(deployer, docker_client, env, revision)} == ids
    deployment = deployer.deployment("a4", revision)
    assert deployment["attempts"] == 1, deployment
    assert len(events(deployment, r"started \(attempt")) == 1, deployment["events"]


# -- A5 -------------------------------------------------------------------------------


def worker_of(workers: list[WorkerProcess], owner: str) -> WorkerProcess:
    """The worker whose process group holds a lease owner `host:pid:thread`."""
    pgid = os.getpgid(int(owner.split(":")[1]))
    (worker,) = [w for w in workers if w.process.pid == pgid]
    return worker


def test_a5_broker_connection_dropped_mid_deploy_never_two_workers_on_one_environment(
    app, deployer, docker_client, start_worker, broker
):
    deployer.publish(chain_package())
    env = chain_env(deployer, "a5", delay="2")
    workers = [start_worker(CATALOG_LEASE_SECONDS=FAST_LEASE) for _ in range(2)]
    connections = {w.process.pid: broker.connections_of(w) for w in workers}
    assert all(connections.values()), connections
    revision = deployer.deploy("a5")

    first_container(docker_client, env["id"], revision)
    held = lease_row(app, env["id"])
    active = worker_of(workers, held.owner)
    (other,) = [w for w in workers if w is not active]
    # The active worker loses its broker connections: RabbitMQ requeues the unacked message
    # (late ack) and hands it to the other worker while the deploy still runs.
    broker.close(connections[active.process.pid])
    assert deployer.deployment("a5", revision)["status"] == "running", "dropped too late"

    seen_fencing: set[str] = set()
    seen_leases: set[tuple[str, int]] = set()
    deadline = time.monotonic() + 60
    while deployer.deployment("a5", revision)["status"] in ("queued", "running"):
        containers = containers_of(docker_client, env["id"])
        assert_no_duplicates(containers)
        seen_fencing |= {label(c, "fencing") for c in containers}
        row = lease_row(app, env["id"])
        if row.owner is not None:
            seen_leases.add((row.owner, row.fencing))
        assert time.monotonic() < deadline, "the deploy did not finish in 60 s"
        time.sleep(0.1)

    assert seen_fencing == {str(held.fencing)}, "containers of two lease holders"
    assert seen_leases == {(held.owner, held.fencing)}, "the lease changed hands mid-deploy"
    deployment = deployer.deployment("a5", revision)
    assert deployment["status"] == "succeeded", deployment["events"]
    assert deployment["attempts"] == 1, deployment
    containers = assert_converged(deployer, docker_client, env, revision)
    assert {label(c, "fencing") for c in containers} == {str(held.fencing)}

    # The redelivery reached the other worker, which backed off on the lease, and once the
    # deploy was over some worker ran it to a no-op.
    received = re.findall(rf"Task {re.escape(DEPLOY_TASK)}\[([0-9a-f-]+)\] received",
                          other.log_path.read_text())  # fmt: skip
    assert received, f"the other worker never got the redelivered message:\n{other.log_path}"
    task_id = received[0]
    assert re.search(rf"\[{task_id}\] retry: Retry in", other.log_path.read_text())

    # Both deliveries end: the first as the deploy, the redelivered one as a no-op.
    def both_ended() -> list[str] | None:
        found = sorted(o for w in workers for o in task_outcomes(w, task_id))
        return found if len(found) >= 2 else None

    outcomes = eventually(both_ended, seconds=30, what="the redelivered message to end")
    assert outcomes == ["skipped", "succeeded"]
    assert {c["Id"] for c in containers_of(docker_client, env["id"])} == {
        c["Id"] for c in containers
    }


# -- A6 -------------------------------------------------------------------------------


def test_a6_worker_started_while_the_broker_is_down_retries_then_drains_the_backlog(
    deployer, docker_client, start_worker, broker
):
    deployer.publish(chain_package())
    envs = [chain_env(deployer, f"a6-{i}", delay="0.3") for i in range(2)]
    revisions = [deployer.deploy(env["name"]) for env in envs]

    broker.stop()
    worker = start_worker(wait=False)
    eventually(lambda: "Cannot connect to amqp" in worker.log_path.read_text(), seconds=30,
             what="the worker to report the broker unreachable")  # fmt: skip
    assert worker.process.poll() is None, "the worker gave up instead of retrying"
    broker.start()
    worker.wait_ready(60)

    for env, revision in zip(envs, revisions, strict=True):
        deployment = deployer.wait(env["name"], revision, seconds=60)
        assert deployment["status"] == "succeeded", deployment["events"]
        assert_converged(deployer, docker_client, env, revision)


def test_a6_engine_unreachable_when_a_worker_takes_the_message_it_retries_not_drops(
    deployer, docker_client, start_worker, tmp_path
):
    """A worker whose Docker engine is away (restarting) keeps the deploy instead of failing
    the task, which would ack the message and leave the deployment to a resync."""
    deployer.publish(chain_package())
    env = chain_env(deployer, "a6-engine", delay="0.3")
    engine = tmp_path / "engine.sock"  # the engine's socket, absent for now
    worker = start_worker(CATALOG_DOCKER_URL=f"unix://{engine}")  # no beat: no resync
    revision = deployer.deploy("a6-engine")
    retried = rf"{re.escape(DEPLOY_TASK)}\[[0-9a-f-]+\] retry: Retry in"
    eventually(lambda: re.search(retried, worker.log_path.read_text()), seconds=30,
             what="the worker to find the engine away and retry the task")  # fmt: skip
    assert deployer.deployment("a6-engine", revision)["status"] == "queued"

    engine.symlink_to("/var/run/docker.sock")  # the engine is back
    deployment = deployer.wait("a6-engine", revision, seconds=60)
    assert deployment["status"] == "succeeded", deployment["events"]
    assert_converged(deployer, docker_client, env, revision)


# -- A7 -------------------------------------------------------------------------------


def timed_deploy(deployer, env: str) -> tuple[dict, float]:
    began = time.monotonic()
    body = deployer.call("POST", f"/environments/{env}/deployments", expect=202, json={})
    return body, time.monotonic() - began


def assert_left_to_the_resync(deployer, env: str, revision: int, *, queued: bool = True) -> None:
    """Recorded with a warning event; still queued unless a running resync was quicker."""
    deployment = deployer.deployment(env, revision)
    assert deployment["status"] in (("queued",) if queued else ACTIVE_OR_DONE), deployment
    warnings = [e for e in deployment["events"] if e["level"] == "warning"]
    assert any("broker is unreachable" in e["message"] for e in warnings), deployment["events"]


def test_a7_broker_down_when_the_api_accepts_a_deploy_recorded_then_run_by_the_resync(
    deployer, docker_client, start_worker, broker
):
    deployer.publish(chain_package())
    env = chain_env(deployer, "a7", delay="0.3")

    broker.stop()
    body, took = timed_deploy(deployer, "a7")
    assert took < 10, f"POST deployments took {took:.1f} s with the broker down"
    revision = body["revision"]
    assert_left_to_the_resync(deployer, "a7", revision)
    broker.start()

    start_worker(beat=True, CATALOG_RESYNC_SECONDS="1")
    deployment = deployer.wait("a7", revision, seconds=60)
    assert deployment["status"] == "succeeded", deployment["events"]
    assert_converged(deployer, docker_client, env, revision)


class FreezableProxy:
    """A TCP relay to RabbitMQ that can stop relaying: a broker that accepted the connection
    and then went silent (a network partition, or a resource alarm blocking publishers)."""

    def __init__(self) -> None:
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", 5672))
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.closed.is_set():
                    client.close()
                    upstream.close()
                    return
                self.sockets += [client, upstream]
                for source, target in ((client, upstream), (upstream, client)):
                    relay = threading.Thread(target=self._relay, args=(source, target), daemon=True)
                    relay.start()
                    self.threads.append(relay)

    def _relay(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.frozen.is_set():
                    if self.closed.wait(0.05):
                        return
                target.sendall(data)
        except OSError:
            return

    def close(self) -> None:
        with self.lock:
            self.closed.set()
            for sock in [self.server, *self.sockets]:
                with contextlib.suppress(OSError):  # wakes a relay blocked in recv()
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        for thread in self.threads:
            thread.join(timeout=5)


@pytest.fixture
def silent_broker(app, monkeypatch):
    """The API publishes through a FreezableProxy; its workers talk to RabbitMQ directly."""
    proxy = FreezableProxy()
    celery = make_celery(settings_of(app).replace(broker_url=proxy.url))
    monkeypatch.setitem(app.extensions["catalog"], "publisher", Publisher(celery))
    yield proxy
    proxy.close()  # the abandoned publish fails on its closed socket and lets go of it
    celery.close()


def test_a7_broker_silent_on_an_open_connection_the_api_answers_in_bounded_time(
    deployer, docker_client, start_worker, silent_broker
):
    deployer.publish(chain_package())
    env = chain_env(deployer, "a7-silent", delay="0.3")
    start_worker(beat=True, CATALOG_RESYNC_SECONDS="1")
    first = deployer.wait("a7-silent", deployer.deploy("a7-silent"), seconds=60)
    assert first["status"] == "succeeded", first["events"]  # published through the proxy

    silent_broker.frozen.set()  # the API's open connection to the broker goes quiet
    deployer.call("PATCH", "/environments/a7-silent/apps/chain",
                  json={"parameters": {"delay": "0.3", "mark": "two"}})  # fmt: skip
    body, took = timed_deploy(deployer, "a7-silent")
    assert took < 10, f"POST deployments took {took:.1f} s with a silent broker"
    revision = body["revision"]
    # The worker's resync (every second) may already have published it during the wait.
    assert_left_to_the_resync(deployer, "a7-silent", revision, queued=False)

    deployment = deployer.wait("a7-silent", revision, seconds=60)
    assert deployment["status"] == "succeeded", deployment["events"]
    assert_converged(deployer, docker_client, env, revision, mark="two")


# -- A8 -------------------------------------------------------------------------------


def test_a8_broker_restarted_with_deploys_queued_none_lost(
    deployer, docker_client, start_worker, broker, published_tasks
):
    """`published_tasks` empties this run's queue first: earlier tests may leave messages."""
    deployer.publish(chain_package())
    envs = [chain_env(deployer, f"a8-{i}", delay="0.3") for i in range(3)]
    revisions = [deployer.deploy(env["name"]) for env in envs]
    for env, revision in zip(envs, revisions, strict=True):
        deployment = deployer.deployment(env["name"], revision)
        assert not events(deployment, "unreachable"), "published and confirmed by the broker"
    assert broker.queue_depth() == (3, True)

    broker.stop()
    broker.start()
    assert broker.queue_depth() == (3, True), "messages lost in the broker restart"

    start_worker()  # no beat: only the surviving messages can start these deploys
    for env, revision in zip(envs, revisions, strict=True):
        deployment = deployer.wait(env["name"], revision, seconds=60)
        assert deployment["status"] == "succeeded", deployment["events"]
        assert_converged(deployer, docker_client, env, revision)


# -- A9 -------------------------------------------------------------------------------


def test_a9_a_message_dropped_by_the_publisher_is_republished_by_the_resync(
    app, deployer, docker_client, start_worker, monkeypatch
):
    deployer.publish(chain_package())
    env = chain_env(deployer, "a9", delay="0.3")
    start_worker(beat=True, CATALOG_RESYNC_SECONDS="1")
    publisher = app.extensions["catalog"]["publisher"]
    # The message is lost.
    monkeypatch.setattr(publisher, "send", lambda name, *args, **where: False)

    revision = deployer.deploy("a9")
    # The worker's resync (every second) may already have republished it and the worker
    # started it before this read; nothing else can, since the one publish was dropped.
    assert_left_to_the_resync(deployer, "a9", revision, queued=False)
    deployment = deployer.wait("a9", revision, seconds=60)
    assert deployment["status"] == "succeeded", deployment["events"]
    assert_converged(deployer, docker_client, env, revision)


def test_a9_a_resync_during_the_publish_does_not_publish_again(
    app, deployer, published_tasks, monkeypatch
):
    """The deployment is committed before it is published; a resync that runs in between
    sees it in flight, not as never published, and leaves it to the publish under way."""
    deployer.publish(chain_package())
    env = chain_env(deployer, "a9-window", delay="0.3")
    publisher = app.extensions["catalog"]["publisher"]
    worker = SimpleNamespace(
        sessions=app.extensions["catalog"]["sessionmaker"],
        settings=settings_of(app).replace(resync_stale_seconds=3.0),
    )
    send = publisher.send
    resynced = []

    def resync_then_send(name, *args, **where):
        resynced.append(republish_stale(worker, publisher.celery))
        return send(name, *args, **where)

    monkeypatch.setattr(publisher, "send", resync_then_send)
    revision = deployer.deploy("a9-window")

    assert resynced == [0], "the resync published a deployment that was being published"
    assert published_tasks() == [(DEPLOY_TASK, [env["id"], revision])]


def test_a9_a_confirmed_message_lost_in_the_broker_is_republished_once_stale(
    app, deployer, docker_client, start_worker, monkeypatch
):
    """The broker confirmed the message, then it never reached a worker (here: published to
    a queue nobody consumes). Only the age of the publish tells, so the resync waits for
    CATALOG_RESYNC_STALE_SECONDS before publishing again."""
    deployer.publish(chain_package())
    env = chain_env(deployer, "a9-lost", delay="0.3")
    start_worker(beat=True, CATALOG_RESYNC_SECONDS="1", CATALOG_RESYNC_STALE_SECONDS="3")
    lost = f"{TASK_QUEUE}-lost"
    elsewhere = Publisher(make_celery(settings_of(app).replace(task_queue=lost)))
    monkeypatch.setitem(app.extensions["catalog"], "publisher", elsewhere)
    try:
        revision = deployer.deploy("a9-lost")
        deployment = deployer.deployment("a9-lost", revision)
        assert not events(deployment, "unreachable"), "the broker confirmed the message"
        deployment = deployer.wait("a9-lost", revision, seconds=60)
        assert Broker().queue_depth(lost) == (1, True), "the first message never reached a worker"
    finally:
        rabbitmqctl("delete_queue", lost)

    assert deployment["status"] == "succeeded", deployment["events"]
    (queued,) = events(deployment, r"revision \d+ queued")
    (started,) = events(deployment, r"started \(attempt 1\)")
    waited = (parse_time(started["time"]) - parse_time(queued["time"])).total_seconds()
    assert waited >= 3 - 0.1, f"republished {waited:.1f} s after a confirmed publish"
    assert_converged(deployer, docker_client, env, revision)


# -- C18: the database restarted mid-deploy ---------------------------------------------


def postgresql(action: str) -> None:
    """Stop or start this machine's PostgreSQL cluster (as the machine starts it)."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=60,
    )


def postgresql_answers() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 5432), timeout=1):
        return True
    return False


@pytest.fixture
def database_outage():
    """stop(): PostgreSQL goes away; it is always started again afterwards."""
    yield lambda: postgresql("stop")
    if not postgresql_answers():
        postgresql("start")
    eventually(postgresql_answers, seconds=60, what="PostgreSQL to answer again")


def test_c18_postgresql_restarted_mid_deploy_the_deploy_retries_and_no_lease_is_held_forever(
    app, deployer, docker_client, start_worker, database_outage
):
    deployer.publish(chain_package())
    env = chain_env(deployer, "c18", delay="1.5")
    start_worker(CATALOG_LEASE_SECONDS=FAST_LEASE)
    revision = deployer.deploy("c18")
    first_container(docker_client, env["id"], revision)

    database_outage()
    # The outage must outlast a lease renewal and a readiness event, so the worker meets it.
    time.sleep(3)
    postgresql("start")
    eventually(postgresql_answers, seconds=60, what="PostgreSQL to answer again")

    deployment = deployer.wait("c18", revision, seconds=90)
    assert deployment["status"] == "succeeded", deployment["events"]
    assert deployment["attempts"] >= 2, deployment  # the interrupted attempt was retried
    assert_converged(deployer, docker_client, env, revision)
    lease = lease_row(app, env["id"])
    assert lease.owner is None and lease.expires_at is None


def test_c18_reads_answer_503_while_postgresql_is_down_and_serve_again_once_it_is_back(
    client, make_caller, database_outage
):
    viewer = make_caller("acme", "viewer")
    for _ in range(3):  # the read pool now holds live connections
        assert client.get("/v1/packages", headers=viewer.headers).status_code == 200
    database_outage()
    down = client.get("/v1/packages", headers=viewer.headers)
    assert down.status_code == 503
    assert down.json["detail"] == "the database does not answer"
    assert down.headers["Retry-After"] == "1"
    postgresql("start")
    eventually(postgresql_answers, seconds=60, what="PostgreSQL to answer again")
    # The same app, not restarted. A read on a connection used just before the restart may
    # fail once (503, retry); the pool then replaces every connection the restart dropped.
    assert client.get("/v1/packages", headers=viewer.headers).status_code in (200, 503)
    assert client.get("/v1/packages", headers=viewer.headers).status_code == 200
    assert client.get("/v1/categories", headers=viewer.headers).status_code == 200
