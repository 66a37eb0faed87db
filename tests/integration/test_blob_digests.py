"""A package archive is checked against its digest before a deploy (or its plan) uses it: a
blob damaged on disk fails the deploy naming the package, and nothing runs."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import TEST_IMAGE
from tests.integration.conftest import package_bytes

ENV_LABEL = "io.catalog.env"
RESOURCES = {"memory": "32m", "cpus": 0.25, "pids": 64}
PAGE = b"served from the archive\n"


def page_server() -> bytes:
    """A busybox httpd serving a file of its archive (the deploy reads the archive)."""
    return package_bytes(
        "org.test.page",
        "1.0.0",
        files={"files/index.html": PAGE},
        services={
            "web": {
                "image": TEST_IMAGE,
                "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                "files": {"/www/index.html": "files/index.html"},
                "healthcheck": {
                    "http": {"port": 8080, "path": "/"},
                    "interval": "200ms",
                    "timeout": "500ms",
                    "retries": 10,
                },
                "resources": RESOURCES,
            }
        },
    )


def flip_a_byte(path: Path) -> bytes:
    """Damage the file in place (one byte in its middle); its original content."""
    original = path.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(damaged)
    return original


def labelled(docker_client, env_id: str) -> list[dict]:
    return docker_client.api.containers(all=True, filters={"label": f"{ENV_LABEL}={env_id}"})


def test_a_damaged_archive_fails_the_deploy_naming_the_package_and_creates_no_container(
    app, deployer, start_worker, docker_client
):
    start_worker()
    digest = deployer.publish(page_server())["digest"]
    blob = app.extensions["catalog"]["blobs"].path_for(digest)
    original = flip_a_byte(blob)
    env_id = deployer.create_env("damaged")["id"]
    deployer.add_app("damaged", "site", "org.test.page")

    # The plan before the deploy already says so.
    planned = deployer.client.post("/v1/environments/damaged/plan", headers=deployer.headers)
    assert planned.status_code == 400, planned.get_json()
    (problem,) = planned.get_json()["errors"]
    assert (
        "package org.test.page 1.0.0: the archive does not match its digest" in (problem["message"])
    )

    failed = deployer.wait("damaged", deployer.deploy("damaged"))
    assert failed["status"] == "failed", failed["events"]
    said = f"package org.test.page 1.0.0: the archive does not match its digest {digest}"
    assert said in failed["error"]
    errors = [e["message"] for e in failed["events"] if e["level"] == "error"]
    assert [m for m in errors if said in m], failed["events"]
    environment = deployer.environment("damaged")
    assert environment["status"] == "deploy_failed"
    assert said in environment["status_detail"]
    assert labelled(docker_client, env_id) == []

    # The same blob made whole again deploys: each attempt checks the file as it is now.
    blob.write_bytes(original)
    repaired = deployer.wait("damaged", deployer.deploy("damaged"))
    assert repaired["status"] == "succeeded", repaired["events"]
    (container,) = labelled(docker_client, env_id)
    assert container["State"] == "running"
