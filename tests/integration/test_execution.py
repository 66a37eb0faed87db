"""The deploy executor against an engine in memory (tests/unit/fake_engine.py), on real PostgreSQL.

The API stores the deployments as a user makes them; `deploy` then runs in this process with
the fake engine, so each test sees the exact order of the engine calls: start-beside and
stop-first replacement, the undo of a failed revision, and a cancel mid-wait.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update

from catalog import settings_of
from catalog.models import Deployment
from tests.conftest import TEST_IMAGE
from tests.integration.conftest import package_bytes
from tests.integration.stack import Deployer
from tests.unit.fake_engine import FakeEngine
from workers.deploy.run import deploy
from workers.runtime import Runtime

IMAGE_ID = "sha256:" + "5e" * 32
BODY = {"type": "object", "properties": {"body": {"type": "string", "default": "v1"}}}


def service(*, publish: bool = False) -> dict:
    return {
        "image": TEST_IMAGE,
        "command": ["sh", "-c", "exec sleep 3600"],
        "environment": {"BODY": "{{ params.body }}"},
        "ports": [{"container": 8080, "publish": publish}],
    }


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(images={TEST_IMAGE: IMAGE_ID})


@pytest.fixture
def user(client, make_caller) -> Deployer:
    return Deployer(client, make_caller("acme", "publisher").headers)


def deploying_here(app, engine, **defaults):
    """run(env_id, revision, **settings) -> the deployment's final status, deployed in this
    process on `engine` with `defaults` and `settings` over the app's settings."""
    sessions = app.extensions["catalog"]["sessionmaker"]

    def run(env_id: str, revision: int, **settings) -> str:
        overrides = {"MIN_RUNNING_SECONDS": 0, **defaults, **settings}
        rt = Runtime(
            sessions=sessions, engine=engine, blob_path=app.extensions["catalog"]["blobs"].path_for,
            settings=settings_of(app).overridden(overrides),
            owner="test", secrets=sessions.kw["info"]["secrets"],
        )  # fmt: skip
        return deploy(rt, env_id, revision)

    return run


@pytest.fixture
def run(app, engine):
    """run(env_id, revision, **settings) -> the deployment's final status, deployed here."""
    return deploying_here(app, engine)


def environment(user: Deployer, services: dict) -> str:
    """An environment `e` with app `web` of a package of `services`; its id."""
    user.publish(package_bytes("org.acme.tier", "1.0.0", parameters=BODY, services=services))
    env_id = user.create_env("e")["id"]
    user.add_app("e", "web", "org.acme.tier")
    return env_id


def next_revision(user: Deployer, body: str) -> int:
    user.call("PATCH", "/environments/e/apps/web", json={"parameters": {"body": body}})
    return user.deploy("e")


def names(engine: FakeEngine) -> list[str]:
    return [c.name for c in engine.running()]


def test_a_new_container_starts_beside_the_old_and_takes_its_name_once_ready(user, run, engine):
    env_id = environment(user, {"api": service()})
    assert run(env_id, user.deploy("e")) == "succeeded"
    (old,) = engine.running()
    engine.calls.clear()

    assert run(env_id, next_revision(user, "v2")) == "succeeded"
    (new,) = engine.running()
    assert new.name.endswith("_r2") and old.name.endswith("_r1")
    # Created off the service's name, started, joined to it once ready, then the old one goes.
    assert engine.calls == [
        ("create", new.name), ("start", new.name), ("join", new.name), ("remove", old.name),
    ]  # fmt: skip
    network = f"cat-{env_id}"
    assert new.params["networking_config"] == {network: {"Aliases": []}}
    assert new.params["hostname"] is None
    assert new.networks[network] == ["api.web"]
    assert user.deployment("e", 2)["status"] == "succeeded"


def test_a_published_port_stops_the_old_container_first(user, run, engine):
    env_id = environment(user, {"api": service(publish=True)})
    assert run(env_id, user.deploy("e")) == "succeeded"
    (old,) = engine.running()
    engine.calls.clear()

    assert run(env_id, next_revision(user, "v2")) == "succeeded"
    (new,) = engine.running()
    assert engine.calls == [
        ("stop", old.name), ("create", new.name), ("start", new.name), ("remove", old.name),
    ]  # fmt: skip
    # Created under the service's name at once: nothing else answers to it meanwhile.
    assert new.params["networking_config"][f"cat-{env_id}"]["Aliases"] == ["api.web"]


def test_a_failed_revision_is_undone_and_the_old_one_keeps_serving(user, run, engine):
    env_id = environment(user, {"api": service(publish=True), "probe": service()})
    assert run(env_id, user.deploy("e")) == "succeeded"
    before = names(engine)

    engine.fail_start.add("probe")
    assert run(env_id, next_revision(user, "v2")) == "rolled_back"
    assert names(engine) == before  # the stopped-first api container runs again
    assert not [c for c in engine.containers.values() if c.name.endswith("_r2")]
    deployment = user.deployment("e", 2)
    assert "refused by the test" in deployment["error"]
    assert user.environment("e")["current_revision"] == 1


def test_a_cancel_while_waiting_for_readiness_undoes_the_revision(app, user, run, engine):
    env_id = environment(user, {"api": service()})
    assert run(env_id, user.deploy("e")) == "succeeded"
    before = names(engine)
    revision = next_revision(user, "v2")
    sessions = app.extensions["catalog"]["sessionmaker"]

    def cancel(_container) -> None:  # as the API's cancel does, while the new one proves ready
        with sessions() as session:
            session.execute(
                update(Deployment)
                .where(Deployment.environment_id == env_id, Deployment.revision == revision)
                .values(cancel_requested=True)
            )
            session.commit()

    engine.on_start.append(cancel)
    assert run(env_id, revision, MIN_RUNNING_SECONDS=5) == "cancelled"
    assert names(engine) == before
    assert user.deployment("e", revision)["status"] == "cancelled"
    assert user.environment("e")["current_revision"] == 1
