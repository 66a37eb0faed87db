"""Deployments on the real engine and broker: bindings, selective replacement, rollback.

Every test drives the API like a user, lets a real `catalogctl worker` process do
the work, and then looks at the engine itself (containers by the io.catalog.env
label). Waits are bounded polls; healthchecks are fast (200 ms) where a test needs
a failure, so each test takes seconds.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, ip_address

import docker
import pytest

from catalog.api import deployments as deployments_api
from catalog.queue import DEPLOY_TASK, Publisher
from tests.conftest import EXAMPLES, TEST_IMAGE
from tests.integration.conftest import package_bytes
from tests.integration.stack import TEST_NETWORK_POOL, Deployer
from tests.polling import eventually

ENV_LABEL = "io.catalog.env"
RESOURCES = {"memory": "32m", "cpus": 0.25, "pids": 64}


# -- packages ---------------------------------------------------------------------------------


def web(port: int, body: str, *, publish: bool = False, **health) -> dict:
    """A busybox httpd on `port` serving `body` (rendered: may use params/settings) at `/`."""
    script = (
        f'mkdir -p /www && printf %s "$BODY" > /www/index.html && exec httpd -f -p {port} -h /www'
    )
    return {
        "image": TEST_IMAGE,
        "command": ["sh", "-c", script],
        "environment": {"BODY": body},
        "ports": [{"container": port, "publish": publish}],
        "healthcheck": {
            "http": {"port": port, "path": "/"},
            "interval": "200ms",
            "timeout": "500ms",
            "retries": 10,
            **health,
        },
        "resources": RESOURCES,
    }


def broken(port: int, message: str) -> dict:
    """Says what is wrong on its log and never listens: not ready after 4 x (0.2 + 0.5) s."""
    return {
        **web(port, "never served", retries=4),
        "command": ["sh", "-c", f"echo '{message}'; echo 'giving up' >&2; exec sleep 3600"],
    }


def slow(port: int, body: str) -> dict:
    """Ready only after a minute (long start period): a deployment that waits on it runs long."""
    service = web(port, body, start_period="60s", retries=100)
    service["command"] = ["sh", "-c", "sleep 60; " + service["command"][2]]
    return service


# A container of the environment to probe the others from (no healthcheck: ready by running).
# Its PID 1 is a shell, which reaps what `docker exec` leaves behind (busybox `timeout` leaves
# a watcher process): with `sleep` as PID 1 the zombies would soon exhaust the pids limit.
PROBE = {
    "image": TEST_IMAGE,
    "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
    "resources": RESOURCES,
}

BODY_PARAM = {
    "type": "object",
    "properties": {"body": {"type": "string", "default": "v1"}},
}


def tier(version: str, api: dict, name: str = "org.test.tier") -> bytes:
    """An `api` service (port 9000, not published) and a `probe` beside it."""
    return package_bytes(
        name,
        version,
        parameters=BODY_PARAM,
        services={"api": api, "probe": PROBE},
        outputs={"url": "http://{{ services.api.hostname }}:9000/"},
    )


# -- the engine -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """A container as the engine lists it (one call, no inspect that could race a removal)."""

    id: str
    name: str
    labels: dict[str, str]
    running: bool


def containers(docker_client, env_id: str, *, every: bool = True) -> list[Seen]:
    found = docker_client.api.containers(all=every, filters={"label": f"{ENV_LABEL}={env_id}"})
    return [
        Seen(c["Id"], c["Names"][0].lstrip("/"), c.get("Labels") or {}, c["State"] == "running")
        for c in found
    ]


def running_ids(docker_client, env_id: str) -> dict[tuple[str, str], str]:
    """(app, service) -> container id of what runs for the environment; one per slot."""
    found: dict[tuple[str, str], str] = {}
    for container in containers(docker_client, env_id, every=False):
        labels = container.labels
        key = (labels["io.catalog.app"], labels["io.catalog.service"])
        assert key not in found, f"two containers for {key}"
        found[key] = container.id
    return found


def engine_leftovers(docker_client, env_id: str) -> list[str]:
    selector = {"label": f"{ENV_LABEL}={env_id}"}
    return (
        [f"container {c.name}" for c in containers(docker_client, env_id)]
        + [f"network {n.name}" for n in docker_client.networks.list(filters=selector)]
        + [f"volume {v.name}" for v in docker_client.volumes.list(filters=selector)]
    )


def container_of(docker_client, env_id: str, app: str, service: str):
    return docker_client.containers.get(running_ids(docker_client, env_id)[(app, service)])


def ip_of(container, env_id: str) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][f"cat-{env_id}"]["IPAddress"]


def network_subnet(docker_client, env_id: str) -> IPv4Network:
    [config] = docker_client.api.inspect_network(f"cat-{env_id}")["IPAM"]["Config"]
    return IPv4Network(config["Subnet"])


def fetch(host: str, port: int, path: str = "/") -> bytes:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
        return response.read()


def fetch_service(docker_client, env_id: str, app: str, service: str, port: int) -> bytes:
    """GET / of an unpublished service, from the host, by its address on the env network."""
    return fetch(ip_of(container_of(docker_client, env_id, app, service), env_id), port)


def exec_get(container, url: str, timeout: int = 3) -> tuple[bool, str]:
    """wget from inside `container` (busybox wget's own -T crashes: `timeout` bounds it)."""
    code, output = exec_wget(container, url, timeout)
    return code == 0, output


def exec_wget(container, url: str, timeout: int = 3) -> tuple[int, str]:
    result = container.exec_run(["timeout", str(timeout), "wget", "-q", "-O-", url])
    return result.exit_code, result.output.decode(errors="replace")


def exec_wget_marked(container, url: str, timeout: int = 3) -> tuple[int | None, str]:
    """(wget's exit code, output); (None, raw) when the exec lost the output."""
    script = f'timeout {timeout} wget -q -O- "$0" 2>&1; echo "<exit=$?>"'
    raw = container.exec_run(["sh", "-c", script, url]).output.decode(errors="replace")
    match = re.fullmatch(r"(?s)(.*)<exit=(\d+)>\n", raw)
    if not match:
        return None, raw
    return int(match.group(2)), match.group(1)


@dataclass(frozen=True)
class ProbeFailure:
    started: float  # epoch seconds
    ended: float
    exit_code: int | None
    output: str


class Probe(threading.Thread):
    """GETs a URL from inside a container of the environment every ~50 ms, counting failures.

    It goes through the environment's DNS name, as the other apps do, so it sees what
    they would see while containers come and go.
    """

    def __init__(self, container_id: str, url: str) -> None:
        super().__init__(daemon=True)
        self.client = docker.from_env()
        self.container = self.client.containers.get(container_id)
        self.url = url
        self.ok = 0
        self.lost = 0  # the exec itself failed to report (an engine hiccup, not the service's)
        self.failures: list[ProbeFailure] = []
        self.bodies: set[str] = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            started = time.time()
            code, output = exec_wget_marked(self.container, self.url)
            if code is None:
                self.lost += 1
            elif code == 0 and output:  # every version of the probed service answers with a body
                self.ok += 1
                self.bodies.add(output)
            else:
                self.failures.append(ProbeFailure(started, time.time(), code, output.strip()))
            self._stop_event.wait(0.05)

    def __repr__(self) -> str:
        return (
            f"<Probe {self.url}: {self.ok} ok {self.bodies}, {self.lost} lost by the exec, "
            f"failed: {self.failures}>"
        )

    def __enter__(self) -> Probe:
        self.start()
        eventually(lambda: self.ok or self.failures, 10, "the first probe")
        return self

    def __exit__(self, *_exc) -> None:
        self._stop_event.set()
        self.join(timeout=10)
        self.client.close()


# -- the API ----------------------------------------------------------------------------------


def patch_app(deployer: Deployer, env: str, app: str, **changes) -> dict:
    return deployer.call("PATCH", f"/environments/{env}/apps/{app}", json=changes)


def deploy_ok(deployer: Deployer, env: str, **body) -> dict:
    deployment = deployer.wait(env, deployer.deploy(env, **body))
    assert deployment["status"] == "succeeded", deployment["events"]
    return deployment


def plan_of(deployer: Deployer, env: str) -> dict:
    """POST /environments/{env}/plan: what deploying the draft now would do."""
    return deployer.call("POST", f"/environments/{env}/plan")


def replaced(planned: dict) -> set[tuple[str, str]]:
    return {(c["app"], c["service"]) for c in planned["changes"] if c["action"] == "replace"}


def reasons_of(planned: dict, app: str, service: str) -> list[str]:
    (change,) = [c for c in planned["changes"] if (c["app"], c["service"]) == (app, service)]
    return change["reasons"]


def replaced_by(deployment: dict) -> set[tuple[str, str]]:
    """The slots the deployment's own plan started a container for in place of another."""
    return {
        (s["app"], s["service"])
        for s in deployment["plan"]
        if s["action"] in ("start_beside", "stop_first") and s["container"]
    }


def event_time(deployment: dict, pattern: str) -> float:
    """Epoch seconds of the deployment's one event matching `pattern`."""
    (event,) = [e for e in deployment["events"] if re.search(pattern, e["message"])]
    return datetime.fromisoformat(event["time"]).timestamp()


def error_events(deployment: dict) -> list[dict]:
    return [e for e in deployment["events"] if e["level"] == "error"]


def env_events(deployer: Deployer, env: str, after: int = 0) -> list[dict]:
    return deployer.call("GET", f"/environments/{env}/events?after={after}&limit=1000")["items"]


def env_gone(deployer: Deployer, env: str) -> bool:
    response = deployer.client.get(f"/v1/environments/{env}", headers=deployer.headers)
    assert response.status_code in (200, 404), response.get_json()
    return response.status_code == 404


@pytest.fixture
def other_deployer(client, make_caller, docker_client):
    """A publisher of another tenant, `other`; its environments' engine objects go after."""
    driver = Deployer(client, make_caller("other", "publisher").headers)
    yield driver
    for env_id in driver.env_ids:
        for container in containers(docker_client, env_id):
            docker_client.api.remove_container(container.id, force=True)
        selector = {"label": f"{ENV_LABEL}={env_id}"}
        for network in docker_client.networks.list(filters=selector):
            network.remove()
        for volume in docker_client.volumes.list(filters=selector):
            volume.remove(force=True)


# -- tests ------------------------------------------------------------------------------------


def test_two_bound_apps_deploy_and_the_front_serves_the_store_data(deployer, start_worker):
    start_worker()
    for name in ("kv-store", "kv-front"):
        deployer.publish(EXAMPLES / name)
    deployer.create_env("shop")
    deployer.add_app("shop", "store", "org.example.kvstore", parameters={"message": "from store"})
    deployer.add_app("shop", "front", "org.example.kvfront", bindings={"store": "store"})

    deployment = deployer.wait("shop", deployer.deploy("shop"))

    assert deployment["status"] == "succeeded", deployment["events"]
    environment = deployer.environment("shop")
    assert environment["status"] == "ready"
    assert environment["current_revision"] == 1
    body = json.loads(fetch(*deployer.endpoint("shop", "front")))
    assert body == {"message": "from store", "app": "store"}


def test_a_parameter_or_setting_change_replaces_only_the_containers_it_renders_into(
    deployer, start_worker, docker_client
):
    start_worker()
    deployer.publish(
        package_bytes(
            "org.test.pair",
            "1.0.0",
            parameters={"type": "object", "properties": {"a": {"type": "string"}}},
            services={
                "a": web(8081, "a={{ params.a }}"),
                "b": web(8082, "b={{ settings.x }}"),
                "c": web(8083, "constant"),
            },
        )
    )
    env_id = deployer.create_env("sel", settings={"x": "s1"})["id"]
    deployer.add_app("sel", "one", "org.test.pair", parameters={"a": "A1"})
    deployer.add_app("sel", "two", "org.test.pair", parameters={"a": "A1"})
    deploy_ok(deployer, "sel")
    first = running_ids(docker_client, env_id)
    assert len(first) == 6

    # A parameter of app `one`, used only by its service `a`; the plan says so first.
    patch_app(deployer, "sel", "one", parameters={"a": "A2"})
    planned = plan_of(deployer, "sel")
    assert replaced(planned) == {("one", "a")}
    assert reasons_of(planned, "one", "a") == ["config changed", "parameter a", "environment BODY"]
    deployment = deploy_ok(deployer, "sel")
    assert replaced_by(deployment) == replaced(planned)
    second = running_ids(docker_client, env_id)
    assert {key for key in first if first[key] != second[key]} == {("one", "a")}
    assert fetch_service(docker_client, env_id, "one", "a", 8081) == b"a=A2"
    assert fetch_service(docker_client, env_id, "two", "a", 8081) == b"a=A1"

    # A setting of the environment, used by service `b` of both apps.
    deployer.call("PATCH", "/environments/sel", json={"settings": {"x": "s2"}})
    planned = plan_of(deployer, "sel")
    assert replaced(planned) == {("one", "b"), ("two", "b")}
    assert reasons_of(planned, "two", "b") == ["config changed", "setting x", "environment BODY"]
    assert planned["summary"] == {"create": 0, "replace": 2, "remove": 0, "keep": 4}
    deployment = deploy_ok(deployer, "sel")
    assert replaced_by(deployment) == replaced(planned)
    assert plan_of(deployer, "sel")["summary"]["keep"] == 6  # deployed: nothing to change
    third = running_ids(docker_client, env_id)
    assert {key for key in second if second[key] != third[key]} == {("one", "b"), ("two", "b")}
    for app in ("one", "two"):
        assert fetch_service(docker_client, env_id, app, "b", 8082) == b"b=s2"
    # Nothing of the replaced generations is left over.
    assert len(containers(docker_client, env_id)) == 6


def test_a_failed_upgrade_rolls_back_and_the_old_containers_serve_throughout(
    deployer, start_worker, docker_client
):
    start_worker()
    deployer.publish(tier("1.0.0", web(9000, "{{ params.body }}")))
    deployer.publish(tier("2.0.0", broken(9000, "boom: cannot read /etc/api.conf")))
    env_id = deployer.create_env("fail")["id"]
    deployer.add_app("fail", "svc", "org.test.tier", version="1.0.0", parameters={"body": "old"})
    deploy_ok(deployer, "fail")
    before = running_ids(docker_client, env_id)

    patch_app(deployer, "fail", "svc", version="2.0.0")
    with Probe(before[("svc", "probe")], "http://api.svc:9000/") as probe:
        deployment = deployer.wait("fail", deployer.deploy("fail"))
    assert deployment["status"] == "rolled_back", deployment["events"]
    assert probe.failures == [], probe
    assert probe.ok >= 10
    assert probe.bodies == {"old"}

    environment = deployer.environment("fail")
    assert environment["status"] == "deploy_failed"
    assert environment["current_revision"] == 1
    assert "svc/api" in environment["status_detail"]
    assert "not ready within" in environment["status_detail"]
    # The event names the failing container, the reason and its last log lines.
    (failure,) = [e for e in error_events(deployment) if e["service"] == "api"]
    assert failure["app"] == "svc"
    assert re.search(r"cat-[0-9a-f]{12}_svc_api_0_r2 failed: not ready within", failure["message"])
    assert "last log lines:" in failure["message"]
    assert "boom: cannot read /etc/api.conf" in failure["message"]
    assert "giving up" in failure["message"]
    # The old generation, the very same containers, keeps answering; nothing new is left.
    assert running_ids(docker_client, env_id) == before
    assert {c.id for c in containers(docker_client, env_id)} == set(before.values())
    assert fetch_service(docker_client, env_id, "svc", "api", 9000) == b"old"


def test_an_upgrade_of_an_unpublished_service_starts_beside_without_a_failed_request(
    deployer, start_worker, docker_client
):
    start_worker()
    deployer.publish(tier("1.0.0", web(9000, "one")))
    deployer.publish(tier("2.0.0", web(9000, "two")))
    env_id = deployer.create_env("beside")["id"]
    deployer.add_app("beside", "svc", "org.test.tier", version="1.0.0")
    deploy_ok(deployer, "beside")
    before = running_ids(docker_client, env_id)

    patch_app(deployer, "beside", "svc", version="2.0.0")
    with Probe(before[("svc", "probe")], "http://api.svc:9000/") as probe:
        deployment = deploy_ok(deployer, "beside")
        # Until the old generation is gone for sure.
        eventually(lambda: "two" in probe.bodies and probe.ok >= 20, 10, probe.__repr__)
    assert probe.bodies == {"one", "two"}
    # Nothing fails while the new container starts and proves ready beside the old one, nor
    # once it serves alone. The one exception is the instant the old container leaves the
    # network: the engine's DNS (Docker 20.10) still answers its address for a few tens of
    # ms after the address is gone, so one request resolved then may hang; the worker takes
    # the old container off the network before killing it to keep that window that short.
    ready = event_time(deployment, r"_svc_api_0_r2 ready in")
    removed = event_time(deployment, r"^removed 1 old container")
    outside = [f for f in probe.failures if f.ended < ready or f.started > removed + 0.5]
    assert outside == [], probe
    assert len(probe.failures) <= 1, probe

    after = running_ids(docker_client, env_id)
    assert after[("svc", "probe")] == before[("svc", "probe")]
    assert after[("svc", "api")] != before[("svc", "api")]
    assert len(containers(docker_client, env_id)) == 2
    assert exec_get(docker_client.containers.get(after[("svc", "probe")]),
                    "http://api.svc:9000/") == (True, "two")  # fmt: skip


def test_a_published_service_upgrade_keeps_its_host_port_and_serves_the_new_version(
    deployer, start_worker, docker_client
):
    start_worker()
    deployer.publish(package_bytes("org.test.site", "1.0.0", services={
        "web": web(8080, "first", publish=True)}))  # fmt: skip
    deployer.publish(package_bytes("org.test.site", "2.0.0", services={
        "web": web(8080, "second", publish=True)}))  # fmt: skip
    env_id = deployer.create_env("site")["id"]
    deployer.add_app("site", "www", "org.test.site", version="1.0.0")
    deploy_ok(deployer, "site")
    host, port = deployer.endpoint("site", "www", "web")
    assert fetch(host, port) == b"first"
    old = running_ids(docker_client, env_id)[("www", "web")]

    patch_app(deployer, "site", "www", version="2.0.0")
    deployment = deploy_ok(deployer, "site")

    assert deployer.endpoint("site", "www", "web") == (host, port)
    assert fetch(host, port) == b"second"
    new = docker_client.containers.get(running_ids(docker_client, env_id)[("www", "web")])
    assert new.id != old
    assert new.attrs["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostPort"] == str(port)
    assert any("stopping the old container first" in e["message"] for e in deployment["events"])
    assert len(containers(docker_client, env_id)) == 1


def test_a_missing_image_fails_the_deploy_naming_it_and_leaves_nothing_behind(
    deployer, start_worker, docker_client
):
    """B14: with pulling off, a missing image fails the deploy before anything is created."""
    start_worker(CATALOG_ALLOW_PULL="false")
    missing = "catalog-test/does-not-exist:0.1"
    good = web(9000, "good")
    deployer.publish(package_bytes("org.test.img", "1.0.0", services={
        "api": {**good, "image": missing}}))  # fmt: skip
    deployer.publish(package_bytes("org.test.img", "2.0.0", services={"api": good}))
    deployer.publish(package_bytes("org.test.img", "3.0.0", services={
        "api": good, "extra": {**web(9001, "x"), "image": missing}}))  # fmt: skip
    env_id = deployer.create_env("img")["id"]
    deployer.add_app("img", "svc", "org.test.img", version="1.0.0")

    # A first revision: failed, nothing at all on the engine.
    first = deployer.wait("img", deployer.deploy("img"))
    assert first["status"] == "failed", first["events"]
    assert missing in first["error"]
    environment = deployer.environment("img")
    assert environment["status"] == "deploy_failed"
    assert missing in environment["status_detail"]
    assert [e for e in error_events(first) if missing in e["message"]]
    assert containers(docker_client, env_id) == []

    # A good revision, then an upgrade naming the missing image: rolled back to the good one.
    patch_app(deployer, "img", "svc", version="2.0.0")
    deploy_ok(deployer, "img")
    good_ids = {c.id for c in containers(docker_client, env_id)}
    patch_app(deployer, "img", "svc", version="3.0.0")
    third = deployer.wait("img", deployer.deploy("img"))
    assert third["status"] == "rolled_back", third["events"]
    assert missing in third["error"] and "svc/extra" in third["error"]
    assert deployer.environment("img")["status"] == "deploy_failed"
    assert {c.id for c in containers(docker_client, env_id)} == good_ids
    assert fetch_service(docker_client, env_id, "svc", "api", 9000) == b"good"


def test_from_revision_deploys_an_earlier_snapshot_as_a_new_revision(
    deployer, start_worker, docker_client
):
    start_worker()
    deployer.publish(tier("1.0.0", web(9000, "{{ params.body }}")))
    env_id = deployer.create_env("back")["id"]
    deployer.add_app("back", "svc", "org.test.tier", parameters={"body": "A"})
    deploy_ok(deployer, "back")
    patch_app(deployer, "back", "svc", parameters={"body": "B"})
    deploy_ok(deployer, "back")
    assert fetch_service(docker_client, env_id, "svc", "api", 9000) == b"B"

    deployment = deploy_ok(deployer, "back", from_revision=1)

    assert deployment["revision"] == 3
    assert deployment["from_revision"] == 1
    assert fetch_service(docker_client, env_id, "svc", "api", 9000) == b"A"
    assert deployer.environment("back")["current_revision"] == 3
    assert len(containers(docker_client, env_id)) == 2


def test_cancel_undoes_a_running_deploy_and_a_finished_one_cannot_be_cancelled(
    deployer, start_worker, docker_client
):
    start_worker()
    one = {"fast": web(9000, "{{ params.body }}"), "slow": web(9001, "slow v1")}
    two = {"fast": web(9000, "{{ params.body }}"), "slow": slow(9001, "slow v2")}
    deployer.publish(package_bytes("org.test.slow", "1.0.0", parameters=BODY_PARAM, services=one))
    deployer.publish(package_bytes("org.test.slow", "2.0.0", parameters=BODY_PARAM, services=two))
    env_id = deployer.create_env("cancel")["id"]
    deployer.add_app("cancel", "svc", "org.test.slow", version="1.0.0")
    deploy_ok(deployer, "cancel")
    before = running_ids(docker_client, env_id)

    patch_app(deployer, "cancel", "svc", version="2.0.0", parameters={"body": "v2"})
    revision = deployer.deploy("cancel")

    def new_ones() -> list:
        return [c for c in containers(docker_client, env_id)
                if c.labels["io.catalog.revision"] == str(revision)]  # fmt: skip

    # Both new containers exist, and the fast one already proved ready: the slow one waits.
    eventually(lambda: len(new_ones()) == 2, 20, "both new containers created")
    eventually(
        lambda: any("_svc_fast_0_r2 ready" in e["message"]
                    for e in deployer.deployment("cancel", revision)["events"]),
        20, "the fast container ready",
    )  # fmt: skip
    deployer.call("POST", f"/environments/cancel/deployments/{revision}/cancel", expect=202)
    deployment = deployer.wait("cancel", revision, seconds=20)

    assert deployment["status"] == "cancelled", deployment["events"]
    assert new_ones() == []
    assert running_ids(docker_client, env_id) == before
    assert {c.id for c in containers(docker_client, env_id)} == set(before.values())
    assert fetch_service(docker_client, env_id, "svc", "fast", 9000) == b"v1"
    environment = deployer.environment("cancel")
    assert environment["status"] == "ready"
    assert environment["current_revision"] == 1
    for finished in (1, revision):
        deployer.call("POST", f"/environments/cancel/deployments/{finished}/cancel", expect=409)


def test_events_come_in_order_per_deployment_and_follow_streams_them(
    deployer, start_worker, client, monkeypatch
):
    start_worker()
    deployer.publish(tier("1.0.0", web(9000, "{{ params.body }}")))
    deployer.create_env("ev")
    deployer.add_app("ev", "svc", "org.test.tier")
    deploy_ok(deployer, "ev")
    patch_app(deployer, "ev", "svc", parameters={"body": "two"})
    deploy_ok(deployer, "ev")

    events = env_events(deployer, "ev")
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    for revision in (1, 2):
        messages = [e["message"] for e in events if e["revision"] == revision]
        assert messages[0] == f"revision {revision} queued"
        assert messages[1].startswith(f"revision {revision} started")
        assert messages[2].startswith("plan:")
        assert messages[-1] == f"revision {revision} is ready"
    # The two deployments do not interleave: the second starts after the first is ready.
    last_of_first = max(e["id"] for e in events if e["revision"] == 1)
    assert min(e["id"] for e in events if e["revision"] == 2) > last_of_first
    # `after` returns exactly the later events.
    assert env_events(deployer, "ev", after=last_of_first) == [
        e for e in events if e["id"] > last_of_first
    ]

    # follow=1: server-sent events from `after` on, live, until revision 3 is ready.
    patch_app(deployer, "ev", "svc", parameters={"body": "three"})
    revision = deployer.deploy("ev")
    latest = events[-1]["id"]
    response = client.get(
        f"/v1/environments/ev/events?follow=1&after={latest}",
        headers=deployer.headers,
        buffered=False,
    )
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    streamed: list[dict] = []
    deadline = time.monotonic() + 30
    buffer = ""
    try:
        for chunk in response.response:
            buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                data = [line[6:] for line in frame.splitlines() if line.startswith("data: ")]
                if data:
                    streamed.append(json.loads("".join(data)))
            if any(e["message"] == f"revision {revision} is ready" for e in streamed):
                break
            assert time.monotonic() < deadline, f"no 'is ready' event in 30 s: {streamed}"
    finally:
        response.close()
    assert [e["id"] for e in streamed] == sorted(e["id"] for e in streamed)
    assert all(e["id"] > latest and e["revision"] == revision for e in streamed)
    assert streamed[0]["message"] == f"revision {revision} queued"
    assert streamed == env_events(deployer, "ev", after=latest)[: len(streamed)]

    # follow=1 with a revision: every event of it, then an `end` event, and the stream ends
    # (were it to stay open, it would end after 20 s here, and without the `end` event).
    monkeypatch.setattr(deployments_api, "FOLLOW_MAX_SECONDS", 20.0)
    frames = stream_frames(
        client.get(
            f"/v1/environments/ev/events?follow=1&revision={revision}",
            headers=deployer.headers,
            buffered=False,
        )
    )
    *events_of_revision, end = frames
    assert [data for _, data in events_of_revision] == [
        e for e in env_events(deployer, "ev") if e["revision"] == revision
    ]
    assert end == ("end", {"revision": revision, "status": "succeeded"})


def stream_frames(response) -> list[tuple[str, dict]]:
    """(event type, data) of each frame of a server-sent event stream, once it has ended."""
    text = "".join(c.decode() if isinstance(c, bytes) else c for c in response.response)
    response.close()
    frames = []
    for frame in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        if "data" in fields:
            frames.append((fields.get("event", "message"), json.loads(fields["data"])))
    return frames


def volume_package() -> bytes:
    service = web(9000, "{{ params.body }}")
    service["volumes"] = [{"name": "data", "path": "/data"}]
    return package_bytes("org.test.vol", "1.0.0", parameters=BODY_PARAM,
                         services={"api": service, "probe": PROBE})  # fmt: skip


def test_deleting_an_environment_removes_every_engine_object(deployer, start_worker, docker_client):
    start_worker()
    deployer.publish(volume_package())
    env_id = deployer.create_env("gone")["id"]
    deployer.add_app("gone", "svc", "org.test.vol")
    deploy_ok(deployer, "gone")
    assert {kind.split()[0] for kind in engine_leftovers(docker_client, env_id)} == {
        "container", "network", "volume",
    }  # fmt: skip

    deployer.call("DELETE", "/environments/gone", expect=202)

    eventually(lambda: env_gone(deployer, "gone"), 30, "the environment gone")
    assert engine_leftovers(docker_client, env_id) == []


def test_deleting_during_a_deploy_cancels_it_and_a_late_redelivery_creates_nothing(
    app, deployer, start_worker, docker_client
):
    """B16: the running deploy notices the deletion and undoes itself; a redelivery is a no-op."""
    worker = start_worker(concurrency=2)
    deployer.publish(volume_package())
    service = slow(9000, "slow")
    service["volumes"] = [{"name": "data", "path": "/data"}]
    deployer.publish(package_bytes("org.test.vol", "2.0.0", parameters=BODY_PARAM,
                                   services={"api": service, "probe": PROBE}))  # fmt: skip
    env_id = deployer.create_env("del")["id"]
    deployer.add_app("del", "svc", "org.test.vol", version="1.0.0")
    deploy_ok(deployer, "del")
    patch_app(deployer, "del", "svc", version="2.0.0")
    revision = deployer.deploy("del")
    eventually(
        lambda: any(c.labels["io.catalog.revision"] == str(revision)
                    for c in containers(docker_client, env_id)),
        20, "the slow container created",
    )  # fmt: skip

    deployer.call("DELETE", "/environments/del", expect=202)

    eventually(lambda: env_gone(deployer, "del"), 30, "the environment gone")
    assert engine_leftovers(docker_client, env_id) == []
    log = worker.log_path.read_text()
    assert re.search(r"deploy_environment\[[\w-]+\] succeeded in [\d.]+s: 'cancelled'", log), log

    # A late redelivery of the deploy message: the worker skips it and creates nothing.
    skipped = log.count("'skipped'")
    publisher = app.extensions["catalog"]["publisher"]
    assert Publisher(publisher.celery).send(DEPLOY_TASK, env_id, revision)
    eventually(lambda: worker.log_path.read_text().count("'skipped'") > skipped, 20,
               "the redelivered message handled")  # fmt: skip
    assert engine_leftovers(docker_client, env_id) == []
    assert env_gone(deployer, "del")


def test_a_deployed_container_carries_the_security_policy(deployer, start_worker, docker_client):
    """E33, inspected in the engine."""
    start_worker()
    deployer.publish(volume_package())
    env_id = deployer.create_env("policy")["id"]
    deployer.add_app("policy", "svc", "org.test.vol")
    deploy_ok(deployer, "policy")
    container = container_of(docker_client, env_id, "svc", "api")
    host = container.attrs["HostConfig"]

    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["CapDrop"] == ["ALL"]
    assert host["Privileged"] is False
    assert host["Memory"] == 32 * 1024 * 1024
    assert host["MemorySwap"] == host["Memory"]
    assert host["NanoCpus"] == 250_000_000
    assert host["PidsLimit"] == 64
    assert host["LogConfig"]["Type"] == "json-file"
    assert set(host["LogConfig"]["Config"]) >= {"max-size", "max-file"}
    assert host["RestartPolicy"]["Name"] == "no"
    assert host["NetworkMode"] == f"cat-{env_id}"
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [f"cat-{env_id}"]
    assert host["PortBindings"] in ({}, None)
    mounts = container.attrs["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [
        ("volume", f"cat-{env_id}_svc_data", "/data")
    ]
    assert not host.get("Binds") or all(b.startswith(f"cat-{env_id}_") for b in host["Binds"])
    labels = container.labels
    assert labels["io.catalog.env"] == env_id
    assert labels["io.catalog.tenant"]
    assert (labels["io.catalog.app"], labels["io.catalog.service"]) == ("svc", "api")
    assert labels["io.catalog.revision"] == "1"
    assert int(labels["io.catalog.fencing"]) >= 1
    assert re.fullmatch(r"[0-9a-f]{64}", labels["io.catalog.config-hash"])


def test_a_container_cannot_reach_another_tenants_service(
    deployer, other_deployer, start_worker, docker_client
):
    """E35: each environment has its own network; tenants' networks do not route to each other."""
    start_worker(concurrency=2)
    for driver, name in ((deployer, "org.test.tier"), (other_deployer, "org.other.tier")):
        driver.publish(tier("1.0.0", web(9000, "{{ params.body }}"), name=name))
    mine = deployer.create_env("mine")["id"]
    theirs = other_deployer.create_env("theirs")["id"]
    deployer.add_app("mine", "svc", "org.test.tier", parameters={"body": "mine"})
    other_deployer.add_app("theirs", "svc", "org.other.tier", parameters={"body": "theirs"})
    revisions = (deployer.deploy("mine"), other_deployer.deploy("theirs"))
    assert deployer.wait("mine", revisions[0])["status"] == "succeeded"
    assert other_deployer.wait("theirs", revisions[1])["status"] == "succeeded"

    probe = container_of(docker_client, mine, "svc", "probe")
    own_ip = ip_of(container_of(docker_client, mine, "svc", "api"), mine)
    their_ip = ip_of(container_of(docker_client, theirs, "svc", "api"), theirs)
    their_tenant = container_of(docker_client, theirs, "svc", "api").labels["io.catalog.tenant"]
    assert their_tenant != probe.labels["io.catalog.tenant"]
    # The other tenant's service answers from the host (it is up), not from tenant A.
    assert fetch(their_ip, 9000) == b"theirs"
    assert exec_get(probe, f"http://{own_ip}:9000/") == (True, "mine")
    assert exec_get(probe, "http://api.svc:9000/") == (True, "mine")
    reached, output = exec_get(probe, f"http://{their_ip}:9000/")
    assert not reached, output
    # Each environment network has a /24 of its own out of the workers' CATALOG_NETWORK_POOL.
    subnets = [network_subnet(docker_client, env_id) for env_id in (mine, theirs)]
    assert subnets[0] != subnets[1]
    assert all(s.prefixlen == 24 and s.subnet_of(IPv4Network(TEST_NETWORK_POOL)) for s in subnets)
    assert ip_address(own_ip) in subnets[0] and ip_address(their_ip) in subnets[1]


VAULT_PARAM = {
    "type": "object",
    "$defs": {"token": {"type": "string", "x-secret": True}},
    "properties": {"auth": {"type": "object", "properties": {"token": {"$ref": "#/$defs/token"}}}},
}
VAULT_TOKEN = "tok-sealed-at-rest-42"


def vault_package() -> bytes:
    return package_bytes(
        "org.test.vault",
        "1.0.0",
        parameters=VAULT_PARAM,
        services={"api": web(9000, "token={{ params.auth.token }}"), "probe": PROBE},
    )


def test_a_secret_is_stored_encrypted_and_the_worker_decrypts_it_into_the_container(
    deployer, start_worker, docker_client, app
):
    """G43: at rest only encrypted; the container gets the value; no read shows it."""
    from sqlalchemy import text

    start_worker()
    deployer.publish(vault_package())
    env_id = deployer.create_env("vault")["id"]
    deployer.add_app("vault", "v", "org.test.vault", parameters={"auth": {"token": VAULT_TOKEN}})
    deploy_ok(deployer, "vault")

    assert fetch_service(docker_client, env_id, "v", "api", 9000) == f"token={VAULT_TOKEN}".encode()
    with app.extensions["catalog"]["engine"].connect() as conn:
        rows = [
            conn.execute(text(f"SELECT {column}::text FROM {table}")).scalars().all()
            for table, column in (("apps", "parameters"), ("deployments", "spec"))
        ]
    assert all(rows) and not [r for rs in rows for r in rs if VAULT_TOKEN in r]
    assert '"$secret"' in rows[0][0] and '"$secret"' in rows[1][0]
    for path in ("/environments/vault", "/environments/vault/events?limit=1000"):
        assert VAULT_TOKEN not in json.dumps(deployer.call("GET", path))


def test_a_worker_without_the_key_fails_the_deploy_saying_so(deployer, start_worker):
    start_worker(CATALOG_SECRET_KEY="")  # and no key file in its home
    deployer.publish(vault_package())
    deployer.create_env("nokey")
    deployer.add_app("nokey", "v", "org.test.vault", parameters={"auth": {"token": VAULT_TOKEN}})

    deployment = deployer.wait("nokey", deployer.deploy("nokey"))

    assert deployment["status"] == "failed", deployment["events"]
    assert "CATALOG_SECRET_KEY is not set" in deployment["error"]
