"""Upgrading an app (PATCH …/apps/{app} with a new `version`): the new version's parameter
migrations move the draft's parameters, the answer says what they did, the plan shows the
result before deploying; what the new schema refuses is a 400 naming each parameter, and the
draft stays as it was."""

from __future__ import annotations

import json

from sqlalchemy import select

from catalog.models import App
from catalog.secretbox import SecretBox, is_sealed
from tests.conftest import TEST_IMAGE, TEST_SECRET_KEY
from tests.integration.conftest import package_bytes
from tests.integration.stack import Deployer
from tests.integration.test_deploy import deploy_ok, plan_of

SECRET = "migrated-secret-value-1"
SLEEPER = {
    "image": TEST_IMAGE,
    "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
    "resources": {"memory": "32m", "cpus": 0.25, "pids": 64},
}
V1_PARAMETERS = {
    "type": "object",
    "properties": {
        "db_host": {"type": "string"},
        "db_password": {"type": "string", "x-secret": True},
        "verbose": {"type": "boolean", "default": False},
    },
}
V2_PARAMETERS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["database_host"],
    "properties": {
        "database_host": {"type": "string"},
        "database_password": {"type": "string", "x-secret": True},
        "mode": {"enum": ["legacy", "fast"], "default": "fast"},
    },
}
V2_MIGRATIONS = [
    {
        "from": ">=1.0.0 <2.0.0",
        "rename": {"db_host": "database_host", "db_password": "database_password"},
        "set": {"mode": "legacy"},
        "drop": ["verbose"],
    }
]
V3_PARAMETERS = {  # no migrations: every 2.0.0 parameter but none of its own
    "type": "object",
    "additionalProperties": False,
    "required": ["host"],
    "properties": {"host": {"type": "string"}},
}
MIGRATED = [
    "migrations[0]: rename db_host -> database_host",
    "migrations[0]: rename db_password -> database_password",
    "migrations[0]: set mode",
    "migrations[0]: drop verbose",
]


def shop(version: str) -> bytes:
    """org.test.shop at 1.0.0, 2.0.0 (migrations from 1.x) or 3.0.0 (none)."""
    if version == "1.0.0":
        environment = {"DB_HOST": "{{ params.db_host }}"}
        extra: dict = {"parameters": V1_PARAMETERS}
    elif version == "2.0.0":
        environment = {"DB_HOST": "{{ params.database_host }}", "MODE": "{{ params.mode }}"}
        extra = {"parameters": V2_PARAMETERS, "migrations": V2_MIGRATIONS}
    else:
        environment = {"DB_HOST": "{{ params.host }}"}
        extra = {"parameters": V3_PARAMETERS}
    service = {**SLEEPER, "environment": environment}
    return package_bytes("org.test.shop", version, services={"main": service}, **extra)


def at_one(deployer: Deployer, env: str) -> dict:
    for version in ("1.0.0", "2.0.0", "3.0.0"):
        deployer.publish(shop(version))
    deployer.create_env(env)
    parameters = {"db_host": "db.internal", "db_password": SECRET, "verbose": True}
    return deployer.add_app(env, "web", "org.test.shop", version="1.0.0", parameters=parameters)


def stored_parameters(app) -> dict:
    with app.extensions["catalog"]["sessionmaker"]() as session:
        return session.scalars(select(App.parameters).where(App.name == "web")).one()


def test_an_upgrade_migrates_the_draft_and_a_schema_that_refuses_is_a_400_that_changes_nothing(
    app, client, make_caller
):
    deployer = Deployer(client, make_caller("acme", "publisher").headers)
    at_one(deployer, "shop")

    response = client.patch(
        "/v1/environments/shop/apps/web", json={"version": "2.0.0"}, headers=deployer.headers
    )

    assert response.status_code == 200, response.get_json()
    upgraded = response.get_json()
    assert upgraded["resolved_version"] == "2.0.0"
    assert upgraded["migrated"] == MIGRATED
    assert upgraded["parameters"] == {
        "database_host": "db.internal",
        "database_password": "********",
        "mode": "legacy",
    }
    assert SECRET not in response.get_data(as_text=True)
    stored = stored_parameters(app)
    assert set(stored) == {"database_host", "database_password", "mode"}
    assert is_sealed(stored["database_password"])  # renamed, still sealed
    assert SecretBox([TEST_SECRET_KEY]).open(stored["database_password"]) == SECRET
    # `migrated` belongs to the answer of the change only.
    shown = deployer.call("GET", "/environments/shop/apps/web")
    assert "migrated" not in shown and shown["parameters"] == upgraded["parameters"]
    etag = response.headers["ETag"]

    refused = client.patch(
        "/v1/environments/shop/apps/web",
        json={"version": "3.0.0"},
        headers={**deployer.headers, "If-Match": etag},
    )

    assert refused.status_code == 400
    assert sorted((e["path"], e["message"]) for e in refused.get_json()["errors"]) == [
        ("parameters.database_host", "unknown key"),
        ("parameters.database_password", "unknown key"),
        ("parameters.host", "is required"),
        ("parameters.mode", "unknown key"),
    ]
    assert SECRET not in refused.get_data(as_text=True)
    after = client.get("/v1/environments/shop/apps/web", headers=deployer.headers)
    assert after.headers["ETag"] == etag
    assert after.get_json()["resolved_version"] == "2.0.0"
    assert after.get_json()["parameters"] == upgraded["parameters"]
    assert stored_parameters(app) == stored

    # Parameters sent with the version are the new version's, as they are: nothing migrates.
    moved = deployer.call(
        "PATCH",
        "/environments/shop/apps/web",
        json={"version": "3.0.0", "parameters": {"host": "h"}},
    )
    assert (moved["resolved_version"], moved["parameters"], moved["migrated"]) == (
        "3.0.0",
        {"host": "h"},
        [],
    )


def test_a_downgrade_migrates_nothing(client, make_caller):
    deployer = Deployer(client, make_caller("acme", "publisher").headers)
    at_one(deployer, "shop")
    deployer.call("PATCH", "/environments/shop/apps/web", json={"version": "2.0.0"})

    down = deployer.call("PATCH", "/environments/shop/apps/web", json={"version": "1.0.0"})

    # 1.0.0 takes other keys: the parameters stay as they are, with its default added.
    assert (down["resolved_version"], down["migrated"]) == ("1.0.0", [])
    assert down["parameters"] == {
        "database_host": "db.internal",
        "database_password": "********",
        "mode": "legacy",
        "verbose": False,
    }


def test_the_plan_names_the_migrated_parameters_before_deploying(deployer, start_worker):
    start_worker()
    at_one(deployer, "shop")
    deploy_ok(deployer, "shop")

    upgraded = deployer.call("PATCH", "/environments/shop/apps/web", json={"version": "2.0.0"})
    assert upgraded["migrated"] == MIGRATED
    planned = plan_of(deployer, "shop")

    (change,) = planned["changes"]
    assert (change["app"], change["service"], change["action"]) == ("web", "main", "replace")
    assert change["reasons"] == [
        "config changed",
        "version 1.0.0 -> 2.0.0",
        "parameter database_host",
        "parameter database_password",
        "parameter db_host",
        "parameter db_password",
        "parameter mode",
        "parameter verbose",
        "environment MODE",
    ]
    assert SECRET not in json.dumps(planned)
