"""Time limits on the real engine and broker: deployments, action execs and their output (G47).

A real `catalogctl worker` runs each test with short limits; every wait is a bounded poll.
"""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

from catalog import config
from catalog.models import Environment, Task
from catalog.models.common import utcnow
from tests.conftest import TEST_IMAGE
from tests.integration.conftest import package_bytes
from tests.integration.test_observe import app_container, wait_task
from tests.polling import eventually
from workers.resync import fail_abandoned_actions

# Ready only after five minutes: a window the bounds allow, far past the deploy's limit.
SLOW = {
    "image": TEST_IMAGE,
    "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
    "healthcheck": {"tcp": {"port": 8080}, "start_period": "5m", "interval": "1s"},
    "resources": {"memory": "32m", "cpus": 0.25, "pids": 64},
}
SHELL = {
    "image": TEST_IMAGE,
    # PID 1 is a shell, which reaps what the killed execs leave behind.
    "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
    "resources": {"memory": "32m", "cpus": 0.25, "pids": 64},
}
ACTIONS = {
    "hang": {"service": "web", "command": ["sh", "-c", "sleep 300; echo done"], "timeout": "1s"},
    "hang-long": {"service": "web", "command": ["sh", "-c", "sleep 301"], "timeout": "5m"},
    "chatter": {
        "service": "web",
        "command": [
            "sh",
            "-c",
            "echo BEGIN; head -c 100000 /dev/zero | tr '\\0' a; echo; echo END",
        ],
    },
}


def _gone(container, command: str) -> None:
    def absent() -> bool:
        return not any(command in " ".join(p) for p in container.top()["Processes"])

    eventually(absent, 5, f"{command!r} killed in the container")


def _deploy(deployer, env: str, package: str) -> dict:
    deployer.create_env(env)
    deployer.add_app(env, "web", package)
    return deployer.wait(env, deployer.deploy(env), seconds=60)


def test_a_deployment_past_its_time_limit_fails_undone_and_the_worker_moves_on(
    deployer, start_worker, docker_client
):
    start_worker(CATALOG_DEPLOY_TIME_LIMIT_SECONDS="3")
    deployer.publish(package_bytes("org.acme.slow", "1.0.0", services={"web": SLOW}))
    deployer.publish(package_bytes("org.acme.quick", "1.0.0", services={"web": SHELL}))
    started = time.monotonic()
    deployment = _deploy(deployer, "slow", "org.acme.slow")
    took = time.monotonic() - started
    assert deployment["status"] == "failed"
    assert "ran past its time limit of 3 s" in deployment["error"]
    assert took < 3 + 10, took
    env = deployer.environment("slow")
    assert env["status"] == "deploy_failed"
    assert (
        docker_client.containers.list(all=True, filters={"label": f"io.catalog.env={env['id']}"})
        == []
    )

    # The worker is free at once for the next environment.
    assert _deploy(deployer, "quick", "org.acme.quick")["status"] == "succeeded"


def test_an_action_past_its_timeout_is_killed_and_reported(deployer, start_worker, docker_client):
    start_worker()
    deployer.publish(
        package_bytes("org.acme.acts", "1.0.0", services={"web": SHELL}, actions=ACTIONS)
    )
    assert _deploy(deployer, "shop", "org.acme.acts")["status"] == "succeeded"
    started = time.monotonic()
    task = deployer.call("POST", "/environments/shop/apps/web/actions/hang", json={})
    done = wait_task(deployer, "shop", task["id"], seconds=20)
    assert time.monotonic() - started < 10
    assert done["status"] == "failed"
    assert "ran past its timeout of 1 s and was killed" in done["error"]
    assert done["output_cut"] == 0
    _gone(app_container(docker_client, deployer), "sleep 300")


def test_an_action_past_the_task_time_limit_is_killed(deployer, start_worker, docker_client):
    start_worker(CATALOG_ACTION_TIME_LIMIT_SECONDS="2")
    deployer.publish(
        package_bytes("org.acme.acts", "1.0.0", services={"web": SHELL}, actions=ACTIONS)
    )
    assert _deploy(deployer, "shop", "org.acme.acts")["status"] == "succeeded"
    task = deployer.call("POST", "/environments/shop/apps/web/actions/hang-long", json={})
    done = wait_task(deployer, "shop", task["id"], seconds=20)
    assert done["status"] == "failed"
    assert "task time limit" in done["error"]
    _gone(app_container(docker_client, deployer), "sleep 301")


def test_action_output_keeps_head_and_tail_and_reports_the_cut(deployer, start_worker):
    start_worker()
    deployer.publish(
        package_bytes("org.acme.acts", "1.0.0", services={"web": SHELL}, actions=ACTIONS)
    )
    assert _deploy(deployer, "shop", "org.acme.acts")["status"] == "succeeded"
    task = deployer.call("POST", "/environments/shop/apps/web/actions/chatter", json={})
    done = wait_task(deployer, "shop", task["id"])
    assert (done["status"], done["exit_code"]) == ("succeeded", 0)
    output = done["output"]
    assert output.startswith("BEGIN\naaaa")
    assert output.endswith("aaaa\nEND\n")
    assert f"[... {100_011 - 2 * 4096} bytes of output cut ...]" in output
    assert done["output_cut"] == 100_011 - 2 * 4096
    assert len(output) < 2 * 4096 + 100


def test_the_resync_fails_an_action_whose_worker_is_gone(app, deployer):
    deployer.create_env("shop")
    sessions = app.extensions["catalog"]["sessionmaker"]
    with sessions() as session:
        env_id = session.query(Environment.id).filter_by(name="shop").scalar()
        old, recent = (
            Task(environment_id=env_id, app="web", action="dump", status="running",
                 started_at=utcnow() - timedelta(seconds=seconds))
            for seconds in (2000, 10)
        )  # fmt: skip
        session.add_all([old, recent])
        session.commit()
        ids = old.id, recent.id
    rt = SimpleNamespace(sessions=sessions, settings=config.defaults())
    assert fail_abandoned_actions(rt) == 1
    with sessions() as session:
        old, recent = (session.get(Task, i) for i in ids)
        assert (old.status, recent.status) == ("failed", "running")
        assert "abandoned" in old.error
