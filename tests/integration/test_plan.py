"""The plan before a deploy (POST /environments/{env}/plan): the worker's own preparation
and planner run in the API, against the engine, writing nothing.

That a settings or parameter change's plan lists exactly the containers its deployment then
replaces is asserted in test_deploy (test_a_parameter_or_setting_change_replaces_only_...).
"""

from __future__ import annotations

import json

from sqlalchemy import func, select

from catalog.models import Deployment, DeploymentEvent, HostPort
from tests.conftest import TEST_IMAGE
from tests.integration.conftest import package_bytes
from tests.integration.test_deploy import deploy_ok, plan_of

SLEEPER = {
    "image": TEST_IMAGE,
    "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
    "resources": {"memory": "32m", "cpus": 0.25, "pids": 64},
}
SECRET_PARAMETERS = {
    "type": "object",
    "properties": {
        "password": {"type": "string", "x-secret": True},
        "motd": {"type": "string", "default": "hi"},
    },
}


def keyed(planned: dict) -> dict[tuple[str, str], tuple[str, list[str]]]:
    return {(c["app"], c["service"]): (c["action"], c["reasons"]) for c in planned["changes"]}


def rows(app, model) -> int:
    with app.extensions["catalog"]["sessionmaker"]() as session:
        return session.scalar(select(func.count()).select_from(model))


def vault(version: str, image: str = TEST_IMAGE) -> bytes:
    main = {**SLEEPER, "image": image, "environment": {"PASSWORD": "{{ params.password }}"}}
    side = {**SLEEPER, "environment": {"MOTD": "{{ params.motd }}"}}
    return package_bytes(
        "org.test.vault",
        version,
        parameters=SECRET_PARAMETERS,
        services={"main": main, "side": side},
    )


def test_before_the_first_deploy_every_container_is_created_and_nothing_is_queued(
    app, deployer, published_tasks
):
    deployer.publish(vault("1.0.0"))
    deployer.create_env("fresh")
    deployer.add_app("fresh", "v", "org.test.vault", parameters={"password": "first-secret-1"})

    planned = plan_of(deployer, "fresh")

    assert planned["revision"] == 1
    assert keyed(planned) == {
        ("v", "main"): ("create", ["new app"]),
        ("v", "side"): ("create", ["new app"]),
    }
    assert planned["summary"] == {"create": 2, "replace": 0, "remove": 0, "keep": 0}
    assert published_tasks() == []
    assert rows(app, Deployment) == rows(app, DeploymentEvent) == rows(app, HostPort) == 0
    assert deployer.environment("fresh")["status"] == "new"


def test_a_version_a_secret_and_a_removed_app_are_named_and_no_secret_value_is_shown(
    deployer, start_worker
):
    start_worker()
    deployer.publish(vault("1.0.0"))
    deployer.publish(vault("2.0.0"))
    deployer.publish(package_bytes("org.test.idle", "1.0.0", services={"main": SLEEPER}))
    deployer.create_env("safe")
    deployer.add_app("safe", "v", "org.test.vault", version="1.0.0",
                     parameters={"password": "first-secret-1"})  # fmt: skip
    deployer.add_app("safe", "idle", "org.test.idle")
    deploy_ok(deployer, "safe")

    changes = {"version": "2.0.0", "parameters": {"password": "second-secret-2"}}
    deployer.call("PATCH", "/environments/safe/apps/v", json=changes)
    removed = deployer.client.delete("/v1/environments/safe/apps/idle", headers=deployer.headers)
    assert removed.status_code == 204
    planned = plan_of(deployer, "safe")

    assert planned["revision"] == 2
    assert keyed(planned) == {
        ("idle", "main"): ("remove", ["orphan: app removed"]),
        ("v", "main"): (
            "replace",
            [
                "config changed",
                "version 1.0.0 -> 2.0.0",
                "parameter password",
                "environment PASSWORD",
            ],
        ),
        # Its own config renders the same: the new version does not change this container.
        ("v", "side"): ("keep", ["unchanged"]),
    }
    text = json.dumps(planned)
    assert "first-secret-1" not in text and "second-secret-2" not in text

    # What the deployment then does is what the plan said.
    deployment = deploy_ok(deployer, "safe")
    steps = {(s["app"], s["service"]): s["action"] for s in deployment["plan"] if s["container"]}
    assert steps == {("idle", "main"): "remove", ("v", "main"): "remove", ("v", "side"): "keep"}
    assert {
        (s["app"], s["service"]) for s in deployment["plan"] if s["action"] == "start_beside"
    } == {("v", "main")}


def test_a_template_that_cannot_render_fails_the_plan_as_it_would_fail_the_deploy(deployer):
    broken = {**SLEEPER, "environment": {"X": "{{ params.nothing.deeper }}"}}
    deployer.publish(package_bytes("org.test.broken", "1.0.0", services={"main": broken}))
    deployer.create_env("bad")
    deployer.add_app("bad", "b", "org.test.broken")

    refused = deployer.call("POST", "/environments/bad/plan", expect=400)

    assert refused["errors"] == [
        {
            "path": "services.main.environment.X",
            "message": "undefined variable 'params.nothing.deeper'",
        }
    ]


def test_a_viewer_cannot_plan_and_an_unknown_environment_is_not_found(deployer, make_caller):
    deployer.create_env("mine")
    viewer = make_caller("acme", "viewer")
    deployer.call("POST", "/environments/mine/plan", expect=403, headers=viewer.headers)
    deployer.call("POST", "/environments/nowhere/plan", expect=404)
