"""The tracker on the real engine (TEST_PLAN B10-B13, B15): events, relists, restarts, repairs.

Each test deploys through the API with a real `catalogctl worker`, runs `catalogctl tracker`
as a real process with short intervals, does something to the engine from outside and
then polls (bounded) what the API, the records and the engine say.

B11 stops and starts dockerd itself (SIGTERM to the pid in /var/run/docker.pid, then
`nohup dockerd` as scripts/ensure-services.sh does): for ~15 s the engine is away for
everything else using it too. A finalizer always leaves it running and answering.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from catalog.models import ContainerRecord, Tenant
from catalog.queue import DEPLOY_TASK
from tests.conftest import TEST_IMAGE
from tests.e2e.conftest import free_port
from tests.integration.conftest import package_bytes
from tests.integration.stack import BIN, Deployer
from tests.integration.test_webhooks import Receiver
from tests.polling import eventually
from workers.metrics import EVENT_LAG_BUCKETS

ENV_LABEL = "io.catalog.env"
RESOURCES = {"memory": "32m", "cpus": 0.25, "pids": 64}
# Ends on SIGTERM at once (as PID 1 a plain `sleep` ignores it: an engine stop would wait 10 s).
SLEEPER = {
    "image": TEST_IMAGE,
    "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
    "resources": RESOURCES,
}
# Runs until killed once; from then on every start dies after 0.3 s (its file stays).
FLAKY = {
    "image": TEST_IMAGE,
    "command": [
        "sh",
        "-c",
        "if [ -e /tmp/ran ]; then sleep 0.3; exit 1; fi; touch /tmp/ran; "
        "trap 'exit 0' TERM; sleep 3600 & wait",
    ],
    "resources": RESOURCES,
}
NOT_RUNNING = ("failed", "stopped", "crashloop", "unhealthy")
DOCKER_PID_FILE = Path("/var/run/docker.pid")
DOCKERD_LOG = "/var/log/catalog-dockerd.log"


# -- the tracker process ------------------------------------------------------------------------


class TrackerProcess:
    """`catalogctl tracker` as a real process; its log is kept for the failure message."""

    def __init__(self, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ()) -> None:
        self.log_path = log_path
        self.log = log_path.open("w")
        self.process = subprocess.Popen(
            [BIN / "catalogctl", "tracker", "--loglevel=INFO", *args],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log_path.read_text()

    def connections(self) -> int:
        return len(re.findall(r"following engine events", self.text()))

    def wait_following(self, connections: int = 1, seconds: float = 30) -> TrackerProcess:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tracker exited early:\n{self.text()[-3000:]}")
            if self.connections() >= connections:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"tracker not following events in {seconds} s:\n{self.text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def start_tracker(worker_env, tmp_path, deployer):
    """start_tracker(args=(), **settings) -> a TrackerProcess following the engine (`args`:
    more options of `catalogctl tracker`); stopped afterwards.

    Depends on `deployer` so that it stops before the deployer removes the environments'
    containers (a tracker still running would recreate them).
    """
    started: list[TrackerProcess] = []
    quick = {
        "TRACKER_RELIST_SECONDS": "1",
        "TRACKER_RECONNECT_MAX_SECONDS": "1",
        "RESTART_BACKOFF_SECONDS": "1",
        "RESTART_BACKOFF_MAX_SECONDS": "2",
    }

    def start(args: tuple[str, ...] = (), **settings: str) -> TrackerProcess:
        env = {**worker_env, **{f"CATALOG_{k}": v for k, v in {**quick, **settings}.items()}}
        tracker = TrackerProcess(env, tmp_path / f"tracker-{len(started)}.log", args)
        started.append(tracker)
        return tracker.wait_following()

    yield start
    for tracker in started:
        tracker.stop()


# -- helpers ------------------------------------------------------------------------------------


def throughout(check: Callable[[], object], seconds: float, what: str) -> None:
    """`check` holds at every poll for `seconds` (a property over time, not a blind sleep)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), f"no longer true: {what}"
        time.sleep(0.1)


def deploy_ok(deployer: Deployer, env: str) -> dict:
    deployment = deployer.wait(env, deployer.deploy(env))
    assert deployment["status"] == "succeeded", deployment["events"]
    return deployment


def statuses(deployer: Deployer, env: str) -> dict[str, str]:
    environment = deployer.environment(env)
    return {"": environment["status"], **{a["name"]: a["status"] for a in environment["apps"]}}


def running_ids(docker_client, env_id: str) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for container in docker_client.containers.list(filters={"label": f"{ENV_LABEL}={env_id}"}):
        key = (container.labels["io.catalog.app"], container.labels["io.catalog.service"])
        assert key not in found, f"two containers for {key}"
        found[key] = container.id
    return found


def engine_states(docker_client, env_id: str) -> dict[str, str]:
    listed = docker_client.containers.list(all=True, filters={"label": f"{ENV_LABEL}={env_id}"})
    return {c.id: c.status for c in listed}


@pytest.fixture
def records(app) -> Callable[[str], dict[str, ContainerRecord]]:
    """records(env_id) -> {container id: its ContainerRecord}, read fresh."""
    sessions = app.extensions["catalog"]["sessionmaker"]

    def read(env_id: str) -> dict[str, ContainerRecord]:
        with sessions() as session:
            rows = session.scalars(
                select(ContainerRecord).where(ContainerRecord.environment_id == env_id)
            ).all()
            return {r.id: r for r in rows}

    return read


def messages(deployer: Deployer, env: str) -> list[str]:
    items = deployer.call("GET", f"/environments/{env}/events?limit=1000")["items"]
    return [e["message"] for e in items]


def fetch(host: str, port: int) -> bytes | None:
    """GET / of a published port; None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=3) as response:
            return response.read()
    except OSError:
        return None


# -- the engine itself ----------------------------------------------------------------------------


def engine_answers() -> bool:
    # `docker info`, not a client object: constructing one against a stopped engine fails
    # half-way and leaves its socket behind.
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=15)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def ensure_engine(seconds: float = 90) -> None:
    """dockerd runs and answers (started the way scripts/ensure-services.sh starts it)."""
    if engine_answers():
        return
    running = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode == 0
    if not running:
        DOCKER_PID_FILE.unlink(missing_ok=True)  # stale after a stop
        # The shell returns at once; dockerd lives on in a session of its own.
        subprocess.run(
            f"nohup dockerd >>{DOCKERD_LOG} 2>&1 &", shell=True, start_new_session=True, check=True
        )
    eventually(engine_answers, seconds, "the Docker engine answers again", every=0.5)


@contextlib.contextmanager
def engine_stopped() -> Iterator[None]:
    """Stop dockerd (SIGTERM to its pid, as a service manager would); it always runs again
    afterwards, whatever happens inside."""
    pid = int(DOCKER_PID_FILE.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
        eventually(lambda: not _pid_alive(pid), 90, "dockerd stopped", every=0.2)
        yield
    finally:
        ensure_engine()


# -- tests --------------------------------------------------------------------------------------


def test_b10_a_killed_container_shows_at_once_is_restarted_and_one_that_keeps_dying_crashloops(
    deployer, start_worker, start_tracker, docker_client, records
):
    start_worker(beat=True)  # its resync republishes a deploy lost with the broker
    tracker = start_tracker()
    deployer.publish(package_bytes("org.test.steady", "1.0.0", services={"main": SLEEPER}))
    deployer.publish(package_bytes("org.test.flaky", "1.0.0", services={"main": FLAKY}))
    env_id = deployer.create_env("life")["id"]
    deployer.add_app("life", "steady", "org.test.steady")
    deployer.add_app("life", "flaky", "org.test.flaky")
    deploy_ok(deployer, "life")
    ids = running_ids(docker_client, env_id)
    steady, flaky = ids[("steady", "main")], ids[("flaky", "main")]
    eventually(lambda: all(r.started_at for r in records(env_id).values()), 10, "records seen")

    # Killed from outside: the API says so within 2 s.
    docker_client.containers.get(steady).kill()
    eventually(
        lambda: (lambda seen: seen["steady"] in NOT_RUNNING and seen[""] == "degraded")(
            statuses(deployer, "life")
        ),
        2,
        "the killed app shows as not running",
    )
    # Then it is back: the same container, started again by the tracker after its backoff.
    eventually(
        lambda: (
            statuses(deployer, "life") == {"": "ready", "steady": "running", "flaky": "running"}
        ),
        10,
        "steady back",
    )
    assert docker_client.containers.get(steady).status == "running"
    record = records(env_id)[steady]
    assert (record.restart_count, len(record.deaths), record.exit_code) == (1, 1, 137)
    assert running_ids(docker_client, env_id) == ids

    # One that dies at every start: restarted with backoff, then given up (crashloop).
    docker_client.containers.get(flaky).kill()

    def given_up() -> bool:
        environment = deployer.environment("life")
        return (
            {a["name"]: a["status"] for a in environment["apps"]}["flaky"] == "crashloop"
            and environment["status"] == "degraded"
            and "flaky: crashloop" in environment["status_detail"]
        )

    eventually(given_up, 30, lambda: f"flaky in crashloop:\n{tracker.text()}")
    record = records(env_id)[flaky]
    assert record.state == "crashloop"
    assert (record.restart_count, len(record.deaths), record.exit_code) == (4, 5, 1)
    # Not restarted hot: for longer than the longest backoff it stays down and uncounted.
    throughout(
        lambda: (
            docker_client.containers.get(flaky).status == "exited"
            and records(env_id)[flaky].restart_count == 4
        ),
        3,
        "flaky stays down",
    )
    # The deaths were spaced by the backoff (1 s, then 2 s capped), not a hot loop.
    gaps = [b - a for a, b in zip(record.deaths, record.deaths[1:], strict=False)]
    assert all(gap >= 1.0 for gap in gaps), gaps
    eventually(lambda: any("crashloop" in m for m in messages(deployer, "life")), 5, "event")
    assert running_ids(docker_client, env_id) == {("steady", "main"): steady}


def test_b11_engine_restart_and_a_removal_while_the_tracker_is_away_end_true_and_repaired(
    deployer, start_worker, start_tracker, docker_client, records
):
    start_worker(beat=True)
    tracker = start_tracker()
    deployer.publish(package_bytes("org.test.pair", "1.0.0", services={"a": SLEEPER, "b": SLEEPER}))
    env_id = deployer.create_env("eng")["id"]
    deployer.add_app("eng", "pair", "org.test.pair")
    deploy_ok(deployer, "eng")
    ids = running_ids(docker_client, env_id)
    eventually(lambda: all(r.started_at for r in records(env_id).values()), 10, "records seen")
    connections = tracker.connections()

    # The engine restarts under the tracker: containers (no restart policy) come back stopped.
    with engine_stopped():
        stopped_at = time.time()
    tracker.wait_following(connections + 1, 60)
    eventually(
        lambda: running_ids(docker_client, env_id) == ids,
        30,
        lambda: f"the same containers running again:\n{tracker.text()}",
    )
    eventually(
        lambda: statuses(deployer, "eng") == {"": "ready", "pair": "running"},
        10,
        "statuses right after the engine restart",
    )
    for record in records(env_id).values():
        # Each death was noticed (from the relist: the engine forgot its events) and repaired.
        assert record.restart_count >= 1, record.name
        assert any(abs(death - stopped_at) < 60 for death in record.deaths), record.deaths
        assert record.state == "running"

    # A container removed while no tracker listens: found by the next tracker's relist.
    tracker.stop()
    docker_client.containers.get(ids[("pair", "a")]).remove(force=True)
    start_tracker()
    after = eventually(
        lambda: (lambda found: len(found) == 2 and found)(running_ids(docker_client, env_id)),
        30,
        "the removed container recreated",
    )
    assert after[("pair", "b")] == ids[("pair", "b")]
    assert after[("pair", "a")] != ids[("pair", "a")]
    eventually(lambda: set(records(env_id)) == set(after.values()), 10, "records match")
    eventually(
        lambda: statuses(deployer, "eng") == {"": "ready", "pair": "running"},
        10,
        "statuses right after the recreation",
    )
    assert set(engine_states(docker_client, env_id)) == set(after.values())


def test_b12_a_burst_of_events_overflows_the_queue_and_the_relist_still_converges(
    deployer, start_worker, start_tracker, docker_client, records
):
    start_worker(beat=True)
    # A tiny queue, and restarts far off so the end state stays what the burst left.
    tracker = start_tracker(
        TRACKER_QUEUE_SIZE="1", RESTART_BACKOFF_SECONDS="120", RESTART_BACKOFF_MAX_SECONDS="120"
    )
    services = {f"s{n}": SLEEPER for n in range(6)}
    deployer.publish(package_bytes("org.test.burst", "1.0.0", services=services))
    env_id = deployer.create_env("burst")["id"]
    deployer.add_app("burst", "many", "org.test.burst")
    deploy_ok(deployer, "burst")
    ids = sorted(running_ids(docker_client, env_id).values())
    eventually(lambda: all(r.started_at for r in records(env_id).values()), 10, "records seen")

    def churn(args: tuple[int, str]) -> None:
        index, container_id = args
        client = docker.from_env()
        try:
            container = client.containers.get(container_id)
            for _ in range(3):
                container.kill()
                container.wait(timeout=10)
                container.start()
            if index % 2 == 0:  # half end killed, half running
                container.kill()
                container.wait(timeout=10)
        finally:
            client.close()

    with ThreadPoolExecutor(len(ids)) as pool:
        list(pool.map(churn, enumerate(ids)))
    truth = engine_states(docker_client, env_id)
    assert sorted(state for state in truth.values()) == ["exited"] * 3 + ["running"] * 3

    def converged() -> bool:
        seen = records(env_id)
        return all(seen[cid].state == truth[cid] for cid in ids)

    eventually(converged, 10, "records equal the engine after the burst")
    assert "dropped" in tracker.text(), "the burst never overflowed the queue"
    throughout(converged, 2, "no stale state comes back")
    assert engine_states(docker_client, env_id) == truth  # nothing restarted meanwhile
    eventually(
        lambda: statuses(deployer, "burst") == {"": "degraded", "many": "failed"}, 5, "statuses"
    )


def test_b13_a_removed_container_is_recreated_and_strays_with_catalog_labels_are_removed(
    deployer, start_worker, start_tracker, docker_client, records, engine_labels
):
    start_worker(beat=True)
    tracker = start_tracker()
    web = {
        "image": TEST_IMAGE,
        "command": [
            "sh",
            "-c",
            "mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 8080 -h /www",
        ],
        "ports": [{"container": 8080, "publish": True}],
        "healthcheck": {"http": {"port": 8080, "path": "/"}, "interval": "200ms", "retries": 10},
        "resources": RESOURCES,
    }
    deployer.publish(
        package_bytes("org.test.site", "1.0.0", services={"web": web, "side": SLEEPER})
    )
    env_id = deployer.create_env("drift")["id"]
    deployer.add_app("drift", "site", "org.test.site")
    deploy_ok(deployer, "drift")
    ids = running_ids(docker_client, env_id)
    host, port = deployer.endpoint("drift", "site", "web")
    assert fetch(host, port) == b"served\n"

    # docker rm -f: recreated from the current revision, on the same host port.
    docker_client.containers.get(ids[("site", "web")]).remove(force=True)
    after = eventually(
        lambda: (lambda found: len(found) == 2 and found)(running_ids(docker_client, env_id)),
        30,
        lambda: f"the removed container recreated:\n{tracker.text()}",
    )
    assert after[("site", "side")] == ids[("site", "side")]
    assert after[("site", "web")] != ids[("site", "web")]
    assert eventually(lambda: fetch(host, port), 10, "served again") == b"served\n"
    eventually(
        lambda: (
            set(records(env_id)) == set(after.values())
            and statuses(deployer, "drift") == {"": "ready", "site": "running"}
        ),
        10,
        "records and statuses after the recreation",
    )

    # Strays carrying the environment's label: unknown labels, and a stale second container
    # for a real slot (an old fencing token).
    real = docker_client.containers.get(after[("site", "side")])

    def stray(labels: dict[str, str]):
        container = docker_client.containers.create(
            TEST_IMAGE, ["sleep", "3600"], name=f"stray-{uuid.uuid4().hex[:8]}", labels=labels
        )
        # A created container is a stray already: the tracker may remove it before it starts.
        with contextlib.suppress(docker.errors.APIError):
            container.start()
        return container

    ghost = {ENV_LABEL: env_id, "io.catalog.app": "ghost", "io.catalog.other": uuid.uuid4().hex}
    strays = [
        stray({**engine_labels, **ghost}),
        stray({**real.labels, **engine_labels, "io.catalog.fencing": "0"}),
    ]

    def gone(container) -> bool:
        try:
            docker_client.containers.get(container.id)
        except docker.errors.NotFound:
            return True
        return False

    eventually(
        lambda: all(gone(c) for c in strays), 15, lambda: f"strays removed:\n{tracker.text()}"
    )
    assert running_ids(docker_client, env_id) == after
    assert set(engine_states(docker_client, env_id)) == set(after.values())
    eventually(
        lambda: len([m for m in messages(deployer, "drift") if m.startswith("removed stray")]) == 2,
        5,
        lambda: f"two strays reported: {messages(deployer, 'drift')}",
    )
    assert statuses(deployer, "drift") == {"": "ready", "site": "running"}


def test_b15_a_container_over_its_memory_limit_shows_oom_and_other_environments_are_untouched(
    deployer, start_worker, start_tracker, docker_client, records
):
    start_worker(beat=True)
    tracker = start_tracker(CRASHLOOP_DEATHS="2", RESTART_BACKOFF_SECONDS="3")
    hog = {
        "image": TEST_IMAGE,
        # Up long enough to deploy, then it allocates 64 MiB under an 8 MiB limit.
        "command": ["sh", "-c", "sleep 2; head -c 64m /dev/zero | tail"],
        "resources": {"memory": "8m", "cpus": 0.25, "pids": 64},
    }
    deployer.publish(package_bytes("org.test.calm", "1.0.0", services={"main": SLEEPER}))
    deployer.publish(package_bytes("org.test.hog", "1.0.0", services={"main": hog}))
    calm_id = deployer.create_env("calm")["id"]
    deployer.add_app("calm", "quiet", "org.test.calm")
    deploy_ok(deployer, "calm")
    calm = running_ids(docker_client, calm_id)
    hog_id = deployer.create_env("hog")["id"]
    deployer.add_app("hog", "greedy", "org.test.hog")
    deploy_ok(deployer, "hog")
    (hog_container,) = running_ids(docker_client, hog_id).values()

    def shown(status: str) -> bool:
        environment = deployer.environment("hog")
        return (
            environment["apps"][0]["status"] == status
            and environment["status"] == "degraded"
            and "out of memory" in environment["status_detail"]
            and records(hog_id)[hog_container].oom_killed
        )

    # The first OOM kill: failed, with the OOM on the record and in the environment's detail.
    eventually(lambda: shown("failed"), 10, lambda: f"the OOM kill shown:\n{tracker.text()}")
    # Restarted once, killed again: given up, still showing why.
    eventually(lambda: shown("crashloop"), 20, lambda: f"crashloop:\n{tracker.text()}")
    record = records(hog_id)[hog_container]
    assert (record.state, record.oom_killed, record.exit_code) == ("crashloop", True, 137)
    assert "out of memory" in deployer.environment("hog")["status_detail"]
    assert any("out of memory" in m for m in messages(deployer, "hog"))

    # The other environment: the same containers, still running, still ready.
    assert running_ids(docker_client, calm_id) == calm
    assert statuses(deployer, "calm") == {"": "ready", "quiet": "running"}
    assert all(r.restart_count == 0 and not r.deaths for r in records(calm_id).values())


@pytest.fixture(autouse=True)
def _engine_runs_afterwards():
    """Whatever a test did to dockerd, the next one finds it running."""
    yield
    ensure_engine()


def test_the_tracker_prunes_images_nothing_needs(app, deployer, start_tracker, docker_client):
    with app.extensions["catalog"]["sessionmaker"]() as session:
        acme = session.scalar(select(Tenant.id).where(Tenant.name == "acme"))
    image = docker_client.images.get(TEST_IMAGE).id
    unneeded = f"catalog.local/{acme}/org.acme.gone:0123456789abcdef-01234567"
    foreign = f"catalog.local/{uuid.uuid4().hex}/org.other.app:0123456789abcdef-01234567"
    for name in (unneeded, foreign):
        docker_client.api.tag(image, *name.rsplit(":", 1))
    try:
        start_tracker(PRUNE_IMAGES_SECONDS="1")

        eventually(
            lambda: unneeded not in docker_client.images.get(image).tags, 15, "unneeded pruned"
        )
        assert foreign in docker_client.images.get(image).tags
        assert TEST_IMAGE in docker_client.images.get(image).tags
    finally:
        for name in (unneeded, foreign):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(name)


def test_the_worker_and_the_tracker_serve_their_metrics_on_their_port(
    deployer, start_worker, start_tracker, docker_client
):
    worker_port, tracker_port = free_port(), free_port()
    start_worker(args=("--metrics-port", str(worker_port)))
    tracker = start_tracker(args=("--metrics-port", str(tracker_port)))
    deployer.publish(package_bytes("org.test.steady", "1.0.0", services={"main": SLEEPER}))
    env_id = deployer.create_env("seen")["id"]
    deployer.add_app("seen", "steady", "org.test.steady")
    deploy_ok(deployer, "seen")

    # The deploy ran in a pool process; the worker's own process tells it, once the task has
    # returned (its deployment is final a moment before: the task commits it, then ends).
    done = ("catalog_worker_tasks_total", (("state", "SUCCESS"), ("task", DEPLOY_TASK)))
    seconds = ("catalog_worker_task_duration_seconds_count", (("task", DEPLOY_TASK),))
    worker = eventually(
        lambda: (lambda seen: seen if seen.get(seconds) else None)(scrape(worker_port)),
        10,
        "the deploy task counted and timed",
    )
    assert worker[done] == 1 and worker[seconds] == 1

    # The engine's events of the deploy reach the tracker, and its relists are timed.
    docker_client.containers.get(running_ids(docker_client, env_id)[("steady", "main")]).kill()
    eventually(
        lambda: scrape(tracker_port).get(("catalog_tracker_event_lag_seconds_count", ()), 0) > 0,
        10,
        "an event's lag observed",
    )
    seen = scrape(tracker_port)
    assert seen[("catalog_tracker_relist_duration_seconds_count", ())] >= 1
    lag_bounds = [ls[0][1] for (n, ls) in seen if n == "catalog_tracker_event_lag_seconds_bucket"]
    assert lag_bounds == [str(float(b)) for b in EVENT_LAG_BUCKETS] + ["+Inf"]
    assert tracker.process.poll() is None


def test_metrics_ports_are_off_by_default(deployer, start_worker, start_tracker):
    worker, tracker = start_worker(), start_tracker()
    assert "metrics on" not in worker.log_path.read_text() + tracker.text()
    assert not listening_ports(worker.process.pid) and not listening_ports(tracker.process.pid)


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value of a process's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def listening_ports(pid: int) -> list[str]:
    """The TCP ports process `pid` listens on (ss)."""
    listed = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in listed.splitlines() if f"pid={pid}," in line]


@pytest.mark.parametrize("app_config", [{"WEBHOOK_ALLOW": "127.0.0.1"}])
def test_a_crashlooping_app_is_told_to_its_webhook(
    deployer, start_worker, start_tracker, docker_client
):
    start_worker(CATALOG_WEBHOOK_ALLOW="127.0.0.1")
    start_tracker()
    hook = Receiver([204])
    try:
        deployer.call("POST", "/webhooks", json={"url": hook.url, "events": ["app.crashloop"]})
        deployer.publish(package_bytes("org.test.flaky", "1.0.0", services={"main": FLAKY}))
        env_id = deployer.create_env("loop")["id"]
        deployer.add_app("loop", "flaky", "org.test.flaky")
        deploy_ok(deployer, "loop")

        docker_client.containers.get(running_ids(docker_client, env_id)[("flaky", "main")]).kill()

        eventually(lambda: hook.events() == ["app.crashloop"], 45, "the crashloop told")
        data = json.loads(hook.received[0][1])["data"]
        assert (data["environment"], data["app"], data["service"]) == ("loop", "flaky", "main")
        assert data["exit_code"] == 1 and data["restarts"] >= 1
        assert statuses(deployer, "loop")["flaky"] == "crashloop"
    finally:
        hook.server.shutdown()
        hook.server.server_close()
