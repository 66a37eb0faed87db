"""The corpus's Murano apps that depend on another deploy bound to it, on the real engine.

Each pair (the dependency, the app that binds it) is imported with `import_murano`, as is.
Only then, here and not in the importer, does every service become runnable offline: the
test image, and a command that listens on each container port the service declares (so the
importer's tcp healthchecks pass) and keeps the environment and arguments the service was
given. Environment, ports, healthchecks, bindings and outputs stay the importer's.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from packages.importers import Imported, write_package
from packages.importers.murano import import_murano
from tests.conftest import TEST_IMAGE
from tests.integration.stack import Deployer, archive_of

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "murano-docker-apps"
ENV_LABEL = "io.catalog.env"
STRING_VALUES = {"grafanaPassword": "s3cret-pass", "dbName": "metrics"}


@dataclass(frozen=True)
class Pair:
    binder: str  # corpus application that has the binding slot
    dependency: str  # corpus application bound to it
    binder_app: str  # app names in the environment
    dependency_app: str
    host_var: str  # the binder's variables that the dependency's outputs fill
    port_var: str | None
    port: str | None  # what port_var must be
    args: tuple[str, ...] = ()  # what the importer's command renders to ({host}: the dependency's)
    extra: dict[str, str] = field(default_factory=dict)  # more of the binder's variables


PAIRS = [
    Pair(
        "Grafana",
        "InfluxDB",
        binder_app="dashboard",
        dependency_app="tsdb",
        host_var="INFLUXDB_HOST",
        port_var="INFLUXDB_PORT",
        port="8086",  # the port Grafana connects to, not InfluxDB's first (8083)
        extra={"INFLUXDB_NAME": "metrics", "HTTP_USER": "admin", "HTTP_PASS": "s3cret-pass"},
    ),
    Pair(
        "Orion",
        "MongoDB",
        binder_app="broker",
        dependency_app="docs",
        host_var="MONGODB_HOST",
        port_var=None,  # Orion is given no port: it uses MongoDB's default
        port=None,
        args=("-dbhost", "{host}"),
    ),
    Pair(
        "GuestBook",
        "Redis",
        binder_app="guestbook",
        dependency_app="cache",
        host_var="REDIS_MASTER_SERVICE_HOST",
        port_var="REDIS_MASTER_SERVICE_PORT",
        port="6379",
        extra={
            "REDISSLAVE_SERVICE_HOST": "redisslave.guestbook",
            "REDISSLAVE_SERVICE_PORT": "6379",
        },
    ),
]


# -- the packages ---------------------------------------------------------------------------


def offline(service: dict) -> dict:
    """`service` on the test image: an httpd (serving the image's /www) on each of its container
    ports, its environment in /tmp/env and its arguments (the importer's command) in /tmp/args.

    PID 1 is a shell that ends on TERM; the httpds daemonize. The command the importer made
    (Orion's `-dbhost <host>`) is passed on as the script's arguments.
    """
    ports = [port["container"] for port in service.get("ports", [])]
    script = (  # written before it listens: ready (a port answers) means the files are there
        "env > /tmp/env && for a; do printf '%s\\n' \"$a\"; done > /tmp/args && "
        + "".join(f"httpd -p {port} -h /www && " for port in ports)
        + "trap 'exit 0' TERM && while :; do sleep 1; done"
    )
    rewritten = copy.deepcopy(service)
    rewritten["image"] = TEST_IMAGE
    rewritten["command"] = ["sh", "-c", script, "murano", *service.get("command", [])]
    return rewritten


def offline_package(imported: Imported, directory: Path) -> bytes:
    """The imported package with its services made `offline`, validated, as an archive."""
    manifest = copy.deepcopy(imported.manifest)
    manifest["services"] = {name: offline(s) for name, s in manifest["services"].items()}
    write_package(Imported(manifest, dict(imported.files), list(imported.report)), directory)
    return archive_of(directory)


def required_values(manifest: dict) -> dict[str, str]:
    """A string for each required parameter (the names the test knows get their own)."""
    return {
        name: STRING_VALUES.get(name, f"value-of-{name}")
        for name in manifest.get("parameters", {}).get("required", [])
    }


# -- the engine ----------------------------------------------------------------------------


def running(docker_client, env_id: str) -> dict[tuple[str, str], object]:
    """(app, service) -> the running container of the environment."""
    found = {}
    for container in docker_client.containers.list(filters={"label": f"{ENV_LABEL}={env_id}"}):
        key = (container.labels["io.catalog.app"], container.labels["io.catalog.service"])
        assert key not in found, f"two containers for {key}"
        found[key] = container
    return found


def read(container, path: str) -> str:
    result = container.exec_run(["cat", path])
    assert result.exit_code == 0, result.output
    return result.output.decode()


def environment_of(container) -> dict[str, str]:
    """What the service's own process has in its environment (written at its start)."""
    return dict(line.split("=", 1) for line in read(container, "/tmp/env").splitlines() if line)


def engine_environment(container) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


# -- the test -------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p.binder}-{p.dependency}")
def test_a_corpus_app_deploys_bound_to_its_dependency(
    pair: Pair, deployer: Deployer, start_worker, docker_client, tmp_path: Path
):
    binder = import_murano(CORPUS / "Applications" / pair.binder / "package")
    dependency = import_murano(CORPUS / "Applications" / pair.dependency / "package")
    # The importer's slot for the dependency's package: the only one the binder has.
    [slot] = [
        name
        for name, b in binder.manifest["bindings"].items()
        if b["package"] == dependency.manifest["name"]
    ]
    [dependency_service] = dependency.manifest["services"]
    host = f"{dependency_service}.{pair.dependency_app}"  # workers.engine.names.hostname
    start_worker()
    deployer.publish(offline_package(dependency, tmp_path / pair.dependency))
    deployer.publish(offline_package(binder, tmp_path / pair.binder))
    env_name = f"murano-{pair.binder.lower()}"
    env_id = deployer.create_env(env_name)["id"]
    deployer.add_app(env_name, pair.dependency_app, dependency.manifest["name"])
    deployer.add_app(
        env_name,
        pair.binder_app,
        binder.manifest["name"],
        parameters=required_values(binder.manifest),
        bindings={slot: pair.dependency_app},
    )

    deployment = deployer.wait(env_name, deployer.deploy(env_name))

    assert deployment["status"] == "succeeded", deployment["events"]
    environment = deployer.environment(env_name)
    assert environment["status"] == "ready", environment
    statuses = {a["name"]: a["status"] for a in environment["apps"]}
    assert set(statuses) == {pair.dependency_app, pair.binder_app}
    assert set(statuses.values()) <= {"running", "healthy"}, statuses
    # Every service of both apps passed its (the importer's tcp) healthcheck.
    slots = {(pair.dependency_app, s) for s in dependency.manifest["services"]} | {
        (pair.binder_app, s) for s in binder.manifest["services"]
    }
    ready = {
        (e["app"], e["service"])
        for e in deployment["events"]
        if re.search(r" ready in [0-9.]+ s ", e["message"])
    }
    assert ready == slots, deployment["events"]
    containers = running(docker_client, env_id)
    assert set(containers) == slots
    test_image = docker_client.images.get(TEST_IMAGE).id  # the engine runs it by its id
    for (app, service), container in containers.items():
        manifest = (binder if app == pair.binder_app else dependency).manifest
        assert container.attrs["Config"]["Image"] in (TEST_IMAGE, test_image)
        assert "tcp" in manifest["services"][service]["healthcheck"]  # the importer's, kept

    # The binder's process sees the dependency's host and port, as the importer's templates
    # render them from the binding's outputs; and the engine was given the same.
    main = next(iter(binder.manifest["services"]))  # the app's own service comes first
    front = containers[(pair.binder_app, main)]
    expected = {pair.host_var: host, **pair.extra}
    if pair.port_var is not None:
        expected[pair.port_var] = pair.port
    seen = environment_of(front)
    assert {name: seen.get(name) for name in expected} == expected
    given = engine_environment(front)
    assert {name: given.get(name) for name in expected} == expected
    assert read(front, "/tmp/args").splitlines() == [a.format(host=host) for a in pair.args]
    # ... and reaches the dependency by them on the environment's network.
    port = pair.port or str(dependency.manifest["outputs"]["port"])
    result = front.exec_run(["timeout", "5", "wget", "-q", "-O-", f"http://{host}:{port}/"])
    assert result.exit_code == 0, result.output
    assert b"catalog test image" in result.output

    if pair.binder == "GuestBook":  # its redis slave, a second service, binds the master too
        slave = environment_of(containers[(pair.binder_app, "redisslave")])
        assert slave["REDIS_MASTER_SERVICE_HOST"] == host
        assert slave["REDIS_MASTER_SERVICE_PORT"] == "6379"
