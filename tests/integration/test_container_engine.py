"""Containers made from container_params, inspected in a real engine (TEST_PLAN E33-E35)."""

from __future__ import annotations

import io
import os
import socket
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import docker
import pytest

from packages.container import ContainerTarget, RuntimeDefaults, container_params
from tests.polling import eventually

pytestmark = pytest.mark.docker

IMAGE = os.environ.get("CATALOG_TEST_IMAGE", "catalog-test/busybox:latest")
RUN_LABEL = "io.catalog.test-run"
MiB = 1024 * 1024


def free_host_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


@dataclass
class Engine:
    """A docker client plus everything this test run created, all labelled with `run`."""

    client: Any
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def labels(self, tenant: str, env: str) -> dict[str, str]:
        return {RUN_LABEL: self.run, "io.catalog.tenant": tenant, "io.catalog.env": env}

    def network(self, tenant: str, env: str) -> str:
        name = f"catalog-test-{self.run}-{env}"
        self.client.networks.create(name, driver="bridge", labels=self.labels(tenant, env))
        return name

    def volume(self, tenant: str, env: str, name: str) -> str:
        docker_name = f"catalog-test-{self.run}-{env}-{name}"
        self.client.volumes.create(docker_name, labels=self.labels(tenant, env))
        return docker_name

    def start(self, service: dict, target: ContainerTarget, defaults: RuntimeDefaults) -> Any:
        container = self.client.containers.create(**container_params(service, target, defaults))
        container.start()
        eventually(lambda: _running(container), seconds=20, what=f"{target.name} to run")
        return container

    def cleanup(self) -> None:
        """Remove every object of this run; try them all, then report what resisted."""
        selector = {"label": f"{RUN_LABEL}={self.run}"}
        failures: list[str] = []
        for container in self.client.containers.list(all=True, filters=selector):
            _remove(container, failures, force=True, v=True)
        for network in self.client.networks.list(filters=selector):
            _remove(network, failures)
        for volume in self.client.volumes.list(filters=selector):
            _remove(volume, failures, force=True)
        assert not failures, f"left behind: {failures}"


def _remove(obj: Any, failures: list[str], **options: Any) -> None:
    try:
        obj.remove(**options)
    except docker.errors.NotFound:
        pass  # already gone, which is what we want
    except docker.errors.APIError as exc:
        failures.append(f"{obj.name}: {exc}")


def _running(container: Any) -> bool:
    container.reload()
    if container.status == "exited":
        raise AssertionError(f"{container.name} exited: {container.logs(tail=20)!r}")
    return container.status == "running"


@pytest.fixture
def engine() -> Iterator[Engine]:
    # Fail, never skip: a run without the engine must not look like a pass.
    try:
        client = docker.from_env()
        client.ping()
        client.images.get(IMAGE)
    except docker.errors.DockerException as exc:
        pytest.fail(
            f"Docker engine or {IMAGE} unavailable ({exc}); run scripts/build-test-images.sh"
        )
    engine = Engine(client)
    try:
        yield engine
    finally:
        engine.cleanup()
        client.close()


def target(
    engine: Engine, tenant: str, env: str, network: str, name: str, **extra: Any
) -> ContainerTarget:
    return ContainerTarget(
        name=f"catalog-test-{engine.run}-{env}-{name}",
        hostname=f"{name}.{env}",
        image=engine.client.images.get(IMAGE).id,  # by id, as the executor does
        network=network,
        aliases=(name,),
        labels={**engine.labels(tenant, env), "io.catalog.service": name},
        **extra,
    )


def sh(container: Any, script: str) -> tuple[int, str]:
    result = container.exec_run(["sh", "-c", script])
    return result.exit_code, result.output.decode(errors="replace")


def read_file(container: Any, path: str) -> str:
    """A file's text through the engine (no process in the container, which may be full)."""
    stream, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        member = archive.extractfile(archive.getmembers()[0])
        assert member is not None
        return member.read().decode(errors="replace")


# The kept capabilities as the kernel's bit mask: CHOWN 0, DAC_OVERRIDE 1, FOWNER 3,
# KILL 5, SETGID 6, SETUID 7, NET_BIND_SERVICE 10.
KEPT_CAPS_MASK = sum(1 << bit for bit in (0, 1, 3, 5, 6, 7, 10))


def test_e33_accepted_service_runs_confined(engine: Engine) -> None:
    defaults = RuntimeDefaults(memory=64 * MiB, cpus=0.5, pids=128, log_max_bytes=2 * MiB)
    network = engine.network("tenant-a", "e33")
    volume = engine.volume("tenant-a", "e33", "data")
    host_port = free_host_port()
    service = {
        "command": ["sh", "-c", "sleep 300"],
        "environment": {"GREETING": "hello"},
        "ports": [{"container": 8080, "protocol": "tcp", "publish": True}],
        "volumes": [{"name": "data", "path": "/data", "read_only": False}],
        "healthcheck": {"command": ["true"], "interval": "1s", "timeout": "1s", "retries": 3},
        "resources": {"memory": "96m"},
    }
    web = target(
        engine, "tenant-a", "e33", network, "web",
        volumes={"data": volume}, host_ports={(8080, "tcp"): host_port},
    )  # fmt: skip
    container = engine.start(service, web, defaults)

    attrs = container.attrs
    host = attrs["HostConfig"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["CapDrop"] == ["ALL"]
    assert sorted(host["CapAdd"]) == sorted(defaults.keep_capabilities)
    assert host["Privileged"] is False
    assert host["Memory"] == 96 * MiB and host["MemorySwap"] == 96 * MiB
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 128
    assert host["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": str(1 * MiB), "max-file": "2"},
    }
    assert host["RestartPolicy"]["Name"] == "no"
    assert host["NetworkMode"] == network
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "", "HostPort": str(host_port)}]}
    # Only the environment network: no default bridge, no host networking.
    assert set(attrs["NetworkSettings"]["Networks"]) == {network}
    assert "web.e33" in attrs["NetworkSettings"]["Networks"][network]["Aliases"]
    # Named volumes only: one volume mount, no bind of a host path.
    mounts = [(m["Type"], m.get("Name"), m["Destination"], m["RW"]) for m in attrs["Mounts"]]
    assert mounts == [("volume", volume, "/data", True)]
    assert attrs["Config"]["Labels"][RUN_LABEL] == engine.run
    assert "GREETING=hello" in attrs["Config"]["Env"]

    # What the kernel says inside the container, not only what the engine recorded.
    code, status = sh(container, "cat /proc/self/status")
    assert code == 0
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["NoNewPrivs"].strip() == "1"
    assert int(fields["CapEff"], 16) == KEPT_CAPS_MASK
    assert int(fields["CapBnd"], 16) == KEPT_CAPS_MASK
    assert sh(container, "echo kept > /data/f && cat /data/f") == (0, "kept\n")

    def healthy() -> bool:
        container.reload()
        return container.attrs["State"].get("Health", {}).get("Status") == "healthy"

    eventually(healthy, seconds=15, what="the engine healthcheck to pass")


def test_e34_fork_bomb_is_capped_by_the_pids_limit(engine: Engine) -> None:
    pids = 64
    network = engine.network("tenant-a", "e34")
    service = {"command": ["sh", "-c", "sleep 300"], "resources": {"pids": pids}}
    container = engine.start(
        service, target(engine, "tenant-a", "e34", network, "bomb"), RuntimeDefaults()
    )

    api = engine.client.api
    script = "exec 2>/tmp/bomb.err; for i in $(seq 200); do sleep 60 & done; wait"
    bomb = api.exec_create(container.id, ["sh", "-c", script])
    api.exec_start(bomb["Id"], detach=True)
    samples: list[int] = []

    def pids_in_use() -> int:
        stats = container.stats(stream=False, one_shot=True)["pids_stats"]
        assert stats.get("limit", pids) == pids
        samples.append(stats["current"])
        return stats["current"]

    def bomb_stopped() -> dict:
        pids_in_use()
        state = api.exec_inspect(bomb["Id"])
        return {} if state["Running"] else state

    # 200 sleeps of 60 s were asked for: the shell can only have stopped early because a
    # fork was refused. The sleeps it did start keep their pids while we look.
    state = eventually(bomb_stopped, seconds=30, what="the fork bomb to hit the cap")
    assert state["ExitCode"] != 0
    assert "can't fork" in read_file(container, "/tmp/bomb.err")
    eventually(lambda: pids_in_use() >= pids - 8, seconds=10, what="the cgroup to fill up")
    assert max(samples) <= pids, samples


def test_e35_tenant_a_cannot_reach_tenant_b(engine: Engine) -> None:
    defaults = RuntimeDefaults()
    server = {"command": ["httpd", "-f", "-p", "8080", "-h", "/www"]}
    client = {"command": ["sh", "-c", "sleep 300"]}
    net_a = engine.network("tenant-a", "e35a")
    net_b = engine.network("tenant-b", "e35b")
    web_a = engine.start(server, target(engine, "tenant-a", "e35a", net_a, "web"), defaults)
    web_b = engine.start(server, target(engine, "tenant-b", "e35b", net_b, "web"), defaults)
    probe_a = engine.start(client, target(engine, "tenant-a", "e35a", net_a, "probe"), defaults)
    probe_b = engine.start(client, target(engine, "tenant-b", "e35b", net_b, "probe"), defaults)

    def ip(container: Any, network: str) -> str:
        container.reload()
        return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]

    def fetch(probe: Any, host: str) -> bool:
        # busybox wget's own -T crashes in this image; `timeout` bounds it instead. The
        # page body is checked because a proxy on the host may answer for any address.
        code, output = sh(probe, f"timeout 3 wget -O - http://{host}:8080/")
        return code == 0 and "catalog test image" in output

    def connects(probe: Any, ip: str) -> bool:
        return sh(probe, f"nc -w 2 {ip} 8080 </dev/null")[0] == 0

    ip_a, ip_b = ip(web_a, net_a), ip(web_b, net_b)
    # Positive controls: each server answers on its own network, by IP and by hostname.
    eventually(lambda: fetch(probe_a, ip_a), seconds=15, what="tenant A's server")
    eventually(lambda: fetch(probe_b, ip_b), seconds=15, what="tenant B's server")
    assert fetch(probe_a, "web.e35a")
    assert connects(probe_a, ip_a)

    # Across tenants: no route by IP either way, and the other environment's names do
    # not resolve.
    assert not fetch(probe_a, ip_b)
    assert not connects(probe_a, ip_b)
    assert not fetch(probe_b, ip_a)
    assert not fetch(probe_a, "web.e35b")
    assert not fetch(probe_a, f"catalog-test-{engine.run}-e35b-web")
