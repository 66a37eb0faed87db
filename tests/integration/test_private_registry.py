"""Pulls from real registries on loopback (Debian's docker-registry, started by the tests):
one tenant's credentials pull its private image, and another tenant cannot run that image
although the first one's pull left it on the shared engine; the password is in no answer,
event, log line or audit row. Then the pull policies: `never` runs only what the engine has,
`always` pulls a moved tag and fails when the pull does, even with the image present."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from sqlalchemy import select, text

from catalog.models import AuditEvent
from tests.conftest import TEST_IMAGE, remove_labelled
from tests.integration.conftest import package_bytes
from tests.integration.registry import LoopbackRegistry, ensure_installed
from tests.integration.stack import Deployer
from tests.integration.test_bundled_images import build_image, remove_image
from tests.integration.test_deploy import deploy_ok, error_events

USER, PASSWORD = "acme-bot", "Pr1vate-registry-pa55"
WRONG = "not-the-password-at-all"


def sleeper(image: str, **extra) -> dict:
    return {
        "image": image,
        "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
        "resources": {"memory": "32m", "cpus": 0.25, "pids": 64},
        **extra,
    }


@pytest.fixture(scope="module")
def registries(docker_client, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """A registry with basic auth (one user) and an open one; stopped, and every tag of
    theirs removed from the engine, at the end."""
    ensure_installed()
    started = []
    try:
        for users in ({USER: PASSWORD}, None):
            started.append(LoopbackRegistry(tmp_path_factory.mktemp("registry"), users))
        yield SimpleNamespace(private=started[0], open=started[1])
    finally:
        for registry in started:
            registry.stop()
            registry.remove_tags(docker_client)


@pytest.fixture
def app_config(registries) -> dict:
    return {"REGISTRIES": f"*,{registries.private.server},{registries.open.server}"}


@pytest.fixture
def allowed(app_config) -> dict[str, str]:
    """What a worker needs to pull from the loopback registries."""
    return {"CATALOG_REGISTRIES": app_config["REGISTRIES"]}


@pytest.fixture
def private_image(docker_client, registries) -> str:
    """The test image pushed to the private registry, and not on the engine by that name."""
    reference = registries.private.push(docker_client, TEST_IMAGE, "private/busybox", "1")
    remove_image(docker_client, reference)
    return reference


@pytest.fixture
def globex(client, make_caller, docker_client) -> Iterator[Deployer]:
    """A publisher of another tenant; its environments' engine objects go afterwards."""
    driver = Deployer(client, make_caller("globex", "publisher").headers)
    yield driver
    for env_id in driver.env_ids:
        remove_labelled(docker_client, f"io.catalog.env={env_id}")


def deploy_one(driver: Deployer, env: str, package: str, service: dict) -> dict:
    """Publish `package` with one service, put it in a new environment and deploy it; the
    finished deployment."""
    driver.publish(package_bytes(package, "1.0.0", services={"main": service}))
    driver.create_env(env)
    driver.add_app(env, "a", package)
    return driver.wait(env, driver.deploy(env))


def add_credentials(driver: Deployer, server: str, password: str) -> dict:
    body = {"server": server, "username": USER, "password": password}
    return driver.call("POST", "/registries", json=body, expect=201)


def running_image(docker_client, env_id: str) -> str:
    (container,) = docker_client.containers.list(filters={"label": f"io.catalog.env={env_id}"})
    return container.attrs["Image"]


def test_a_tenants_credentials_pull_its_private_image_and_never_serve_another_tenant(
    app, deployer, globex, start_worker, allowed, registries, private_image, docker_client
):
    worker = start_worker(**allowed)
    server = registries.private.server
    created = add_credentials(deployer, server, PASSWORD)

    mine = deploy_one(deployer, "mine", "org.acme.private", sleeper(private_image))

    assert mine["status"] == "succeeded", mine["events"]
    pulled = f"image {private_image} pulled with the tenant's credentials for {server}"
    assert pulled in [e["message"] for e in mine["events"]]
    on_engine = docker_client.images.get(private_image).id
    # Another tenant names the same reference: the engine has it, but its pull (as nobody)
    # is refused, and so is its deploy.
    theirs = deploy_one(globex, "theirs", "org.globex.borrowed", sleeper(private_image))
    assert theirs["status"] == "failed", theirs["events"]
    assert private_image in theirs["error"] and f"no credentials for {server}" in theirs["error"]
    assert [e for e in error_events(theirs) if private_image in e["message"]]
    assert docker_client.images.get(private_image).id == on_engine
    # Its own credentials, wrong ones, do no better; nor does anything once both are gone
    # (the server stays guarded: the image pulled with them is still on the engine).
    wrong = add_credentials(globex, server, WRONG)
    again = globex.wait("theirs", globex.deploy("theirs"))
    assert again["status"] == "failed" and private_image in again["error"], again["events"]
    assert f"no credentials for {server}" not in again["error"]
    for driver, credential in ((globex, wrong), (deployer, created)):
        gone = driver.client.delete(f"/v1/registries/{credential['id']}", headers=driver.headers)
        assert gone.status_code == 204
    last = globex.wait("theirs", globex.deploy("theirs"))
    assert last["status"] == "failed" and private_image in last["error"], last["events"]

    # The password is in no answer, event, log line, audit row or snapshot.
    with app.extensions["catalog"]["sessionmaker"]() as session:
        trail = [(e.action, e.object_id, e.detail) for e in session.scalars(select(AuditEvent))]
        stored = [
            row
            for query in ("SELECT spec::text FROM deployments",
                          "SELECT message FROM deployment_events",
                          "SELECT password::text FROM registry_credentials")
            for row in session.execute(text(query)).scalars()
        ]  # fmt: skip
    shown = [
        json.dumps(x, default=str)
        for x in (created, wrong, mine, theirs, again, last, trail, stored,
                  deployer.call("GET", "/registries"), deployer.call("GET", "/audit"))
    ]  # fmt: skip
    worker.stop()
    for text_ in (*shown, worker.log_path.read_text(), registries.private.log_path.read_text()):
        assert PASSWORD not in text_ and WRONG not in text_
    assert ("registry.create", created["id"], {"server": server}) in trail


def test_never_runs_only_what_the_engine_has(
    deployer, start_worker, allowed, registries, docker_client
):
    start_worker(**allowed)
    absent = registries.open.push(docker_client, TEST_IMAGE, "open/never", "1")
    remove_image(docker_client, absent)  # in the registry, not on the engine

    refused = deploy_one(deployer, "never", "org.test.never", sleeper(absent, pull_policy="never"))
    pulled = deploy_one(deployer, "pulled", "org.test.pulled", sleeper(absent))
    present = deploy_one(
        deployer, "present", "org.test.present", sleeper(TEST_IMAGE, pull_policy="never")
    )

    assert refused["status"] == "failed", refused["events"]
    assert f"image {absent} is not on the engine (its pull_policy is never)" in refused["error"]
    assert [e for e in error_events(refused) if absent in e["message"]]
    # The default pulls it when absent; `never` runs what the engine has.
    assert pulled["status"] == "succeeded", pulled["events"]
    assert present["status"] == "succeeded", present["events"]


def test_always_pulls_a_moved_tag_and_a_failed_pull_fails_the_deploy(
    deployer, start_worker, allowed, registries, docker_client, private_image
):
    start_worker(**allowed)
    env = deployer.create_env("always")["id"]
    first, second = build_image(docker_client, "mutable-1"), build_image(docker_client, "mutable-2")
    try:
        moving = registries.open.push(docker_client, first, "open/mutable", "1")
        service = sleeper(moving, pull_policy="always")
        deployer.publish(package_bytes("org.test.always", "1.0.0", services={"main": service}))
        deployer.add_app("always", "a", "org.test.always")
        deploy_ok(deployer, "always")
        assert running_image(docker_client, env) == first
        # The tag moves in the registry while the engine keeps the old image under it.
        registries.open.push(docker_client, second, "open/mutable", "1")
        docker_client.api.tag(first, moving.rsplit(":", 1)[0], "1")

        deploy_ok(deployer, "always")

        assert running_image(docker_client, env) == second
        assert docker_client.images.get(moving).id == second
    finally:
        remove_labelled(docker_client, f"io.catalog.env={env}")
        for image in (first, second):
            remove_image(docker_client, image)

    # A pull that fails fails the deploy, though the engine has the image (not guarded here:
    # nobody keeps credentials for the private registry in this test).
    registries.private.push(docker_client, TEST_IMAGE, "private/busybox", "1")
    failed = deploy_one(deployer, "stale", "org.test.stale",
                        sleeper(private_image, pull_policy="always"))  # fmt: skip
    kept = deploy_one(deployer, "kept", "org.test.kept", sleeper(private_image))
    assert failed["status"] == "failed", failed["events"]
    assert f"image {private_image} could not be pulled" in failed["error"]
    assert kept["status"] == "succeeded", kept["events"]
