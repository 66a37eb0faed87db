"""Logs, actions and the log budget on the real engine (TEST_PLAN C20, C21)."""

from __future__ import annotations

import contextlib
import glob
import os
import time

import pytest

from tests.integration.conftest import package_bytes
from tests.polling import eventually

KiB = 1024
MiB = 1024 * KiB

CHATTY = {
    "image": "catalog-test/busybox:latest",
    "command": ["sh", "-c", "echo started; echo second line; exec httpd -f -p 8080"],
}

ACTIONS = {
    "greet": {
        "service": "web",
        "command": ["sh", "-c", 'echo "hello $PARAM_NAME"'],
        "parameters": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "maxLength": 20}},
        },
    },
    "fail": {"service": "web", "command": ["sh", "-c", "echo broken >&2; exit 3"]},
}


def chatty_package(name="org.acme.chatty", **extra) -> bytes:
    return package_bytes(name, "1.0.0", services={"web": CHATTY}, **extra)


def deployed(deployer, start_worker, env="shop", package=None, app="web") -> None:
    start_worker()
    deployer.publish(package or chatty_package(actions=ACTIONS))
    deployer.create_env(env)
    deployer.add_app(env, app, "org.acme.chatty")
    deployment = deployer.wait(env, deployer.deploy(env))
    assert deployment["status"] == "succeeded", deployment["events"]


def wait_task(deployer, env: str, task_id: str, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        task = deployer.call("GET", f"/environments/{env}/tasks/{task_id}")
        if task["status"] in ("succeeded", "failed"):
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} unfinished: {task}")


def app_container(docker_client, deployer, env="shop", app="web"):
    env_id = deployer.environment(env)["id"]
    (container,) = docker_client.containers.list(
        all=True, filters={"label": [f"io.catalog.env={env_id}", f"io.catalog.app={app}"]}
    )
    return container


def test_logs_tail_returns_what_the_container_printed(deployer, start_worker, client):
    deployed(deployer, start_worker)
    response = client.get("/v1/environments/shop/apps/web/logs?tail=10", headers=deployer.headers)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.data.splitlines()[:2] == [b"started", b"second line"]

    one = client.get("/v1/environments/shop/apps/web/logs?tail=1", headers=deployer.headers)
    assert one.data.splitlines() == [b"second line"]


def test_logs_of_an_unknown_app_or_service_are_404(deployer, start_worker, client):
    deployed(deployer, start_worker)
    for path in ("/apps/nope/logs", "/apps/web/logs?service=nope"):
        response = client.get(f"/v1/environments/shop{path}", headers=deployer.headers)
        assert response.status_code == 404, path


def test_follow_streams_the_log(deployer, start_worker, client):
    deployed(deployer, start_worker)
    response = client.get(
        "/v1/environments/shop/apps/web/logs?follow=1&tail=5",
        headers=deployer.headers,
        buffered=False,
    )
    assert response.status_code == 200
    received = b""
    for chunk in response.response:
        received += chunk
        if b"second line" in received:
            break
    response.close()
    assert b"started" in received


def test_a_package_action_runs_in_its_service_with_validated_parameters(deployer, start_worker):
    deployed(deployer, start_worker)
    bad = deployer.call(
        "POST", "/environments/shop/apps/web/actions/greet", expect=400,
        json={"parameters": {"name": 42}},
    )  # fmt: skip
    assert [e["path"] for e in bad["errors"]] == ["parameters.name"]

    task = deployer.call(
        "POST", "/environments/shop/apps/web/actions/greet", json={"parameters": {"name": "ops"}}
    )
    done = wait_task(deployer, "shop", task["id"])
    assert (done["status"], done["exit_code"], done["output"].strip()) == (
        "succeeded",
        0,
        "hello ops",
    )


def test_a_failing_action_is_reported_never_silent(deployer, start_worker):
    deployed(deployer, start_worker)
    task = deployer.call("POST", "/environments/shop/apps/web/actions/fail", json={})
    done = wait_task(deployer, "shop", task["id"])
    assert done["status"] == "failed"
    assert done["exit_code"] == 3
    assert "exited with code 3" in done["error"]
    assert "broken" in done["output"]

    unknown = deployer.call("POST", "/environments/shop/apps/web/actions/nope", expect=404, json={})
    assert "restart" in unknown["detail"]


def test_built_in_stop_start_and_restart(deployer, start_worker, docker_client):
    deployed(deployer, start_worker)
    container = app_container(docker_client, deployer)
    first_start = container.attrs["State"]["StartedAt"]

    def run(action: str, **body) -> dict:
        path = f"/environments/shop/apps/web/actions/{action}"
        return wait_task(deployer, "shop", deployer.call("POST", path, json=body)["id"])

    stop = run("stop")
    container.reload()
    assert stop["status"] == "succeeded"
    assert container.status == "exited"

    start = run("start")
    container.reload()
    assert start["status"] == "succeeded"
    assert container.status == "running"

    restart = run("restart", service="web")
    container.reload()
    assert restart["status"] == "succeeded"
    assert container.status == "running"
    assert container.attrs["State"]["StartedAt"] != first_start


@pytest.mark.parametrize(
    "app_config", [{"LOG_BUDGET_BYTES": 25 * MiB, "LOG_SHARE_BYTES": 10 * MiB}]
)
def test_a_deploy_over_the_log_budget_is_refused_and_running_apps_untouched(
    deployer, start_worker, docker_client
):
    start_worker()
    deployer.publish(package_bytes("org.acme.pair", "1.0.0", services={"a": CHATTY, "b": CHATTY}))
    deployer.publish(chatty_package())
    deployer.create_env("first")
    deployer.add_app("first", "pair", "org.acme.pair")
    assert deployer.wait("first", deployer.deploy("first"))["status"] == "succeeded"
    running = {
        c.id for c in docker_client.containers.list(filters={"label": "io.catalog.app=pair"})
    }

    deployer.create_env("second")
    deployer.add_app("second", "web", "org.acme.chatty")
    refused = deployer.call("POST", "/environments/second/deployments", expect=507, json={})

    assert "log budget" in refused["detail"]
    assert "needs 10 MiB" in refused["detail"] and "5 MiB of 25 MiB is free" in refused["detail"]
    assert deployer.environment("second")["current_revision"] is None
    after = {c.id for c in docker_client.containers.list(filters={"label": "io.catalog.app=pair"})}
    assert after == running


FLOOD = {
    "image": "catalog-test/busybox:latest",
    "command": ["sh", "-c", "while :; do echo 0123456789abcdef0123456789abcdef0123456789; done"],
}


@pytest.mark.parametrize("app_config", [{"LOG_SHARE_BYTES": 64 * KiB}])
def test_a_container_flooding_its_log_stays_within_its_share(deployer, start_worker, docker_client):
    start_worker()
    deployer.publish(package_bytes("org.acme.flood", "1.0.0", services={"web": FLOOD}))
    deployer.create_env("noisy")
    deployer.add_app("noisy", "web", "org.acme.flood")
    assert deployer.wait("noisy", deployer.deploy("noisy"))["status"] == "succeeded"
    container = app_container(docker_client, deployer, "noisy")
    log_dir = os.path.dirname(container.attrs["LogPath"])

    eventually(
        lambda: glob.glob(os.path.join(log_dir, "*-json.log.*")),
        seconds=10,
        what="the log to rotate: the container did not write enough",
    )
    for _ in range(5):  # sampled while the flood goes on
        assert log_bytes(log_dir) <= 64 * KiB + 4 * KiB  # a line may overshoot the rotation point
        time.sleep(0.2)


def log_bytes(log_dir: str) -> int:
    """The size of a container's log files. The engine renames and creates them as it rotates:
    a file listed but gone by the time it is measured holds nothing any more."""
    total = 0
    for path in glob.glob(os.path.join(log_dir, "*-json.log*")):
        with contextlib.suppress(FileNotFoundError):
            total += os.path.getsize(path)
    return total
