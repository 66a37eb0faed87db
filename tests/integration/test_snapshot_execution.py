"""Volume snapshots in the deploy executor against the engine in memory, on real PostgreSQL.

The order of the engine calls around a data-touching upgrade (stop the old container, copy
its volume, start the new one), the restore before the old container starts again when the
revision is undone, what a failed copy leaves, the retention, and the snapshots' listing.
"""

from __future__ import annotations

import pytest

from tests.conftest import TEST_IMAGE
from tests.integration.conftest import package_bytes
from tests.integration.stack import Deployer
from tests.integration.test_execution import deploying_here, engine, user
from tests.unit.fake_engine import FakeContainer, FakeEngine
from workers.engine import EngineError

BODY = {"type": "object", "properties": {"body": {"type": "string", "default": "v1"}}}
__all__ = ["engine", "user"]  # fixtures

HELPER = "snapshot-helper"  # the fake engine's helper image


def db(**extra) -> dict:
    return {
        "image": TEST_IMAGE,
        "command": ["sh", "-c", "exec sleep 3600"],
        "environment": {"BODY": "{{ params.body }}"},
        "volumes": [{"name": "data", "path": "/data"}],
        **extra,
    }


@pytest.fixture
def run(app, engine):
    """run(env_id, revision, **settings) -> the final status; snapshots by the fake's helper."""
    return deploying_here(app, engine, SNAPSHOT_IMAGE=HELPER)


def publish(user: Deployer, version: str, **service) -> None:
    """org.acme.db at `version`: its `db` service's config says the version (so it is replaced)."""
    services = {"db": db(**service), "web": {"image": TEST_IMAGE}}
    services["db"]["environment"]["VERSION"] = version
    user.publish(package_bytes("org.acme.db", version, parameters=BODY, services=services))


def first_deploy(user: Deployer, run, engine: FakeEngine) -> str:
    """Environment `e`, app `store` of org.acme.db 1.0.0 deployed, its volume holding a file."""
    publish(user, "1.0.0")
    env_id = user.create_env("e")["id"]
    user.add_app("e", "store", "org.acme.db", version="1.0.0")
    assert run(env_id, user.deploy("e")) == "succeeded"
    engine.volume_files[volume(env_id)] = {"/data/file": b"original"}
    return env_id


def volume(env_id: str) -> str:
    return f"{env_id}_store_data"  # the fake engine's name of the app's volume


def upgrade(user: Deployer, version: str) -> int:
    user.call("PATCH", "/environments/e/apps/store", json={"version": version})
    return user.deploy("e")


def writes_on_start(engine: FakeEngine, env_id: str, data: bytes) -> None:
    """Each new container of revision 2+ of `db` rewrites the file, as a migration would."""

    def write(container: FakeContainer) -> None:
        if container.labels.get("io.catalog.service") == "db" and not container.name.endswith(
            "_r1"
        ):
            engine.volume_files[volume(env_id)] = {"/data/file": data}

    engine.on_start.append(write)


def snapshots(user: Deployer, **query) -> list[dict]:
    return user.call("GET", "/environments/e/snapshots", query_string=query)["items"]


def messages(user: Deployer, revision: int) -> list[str]:
    return [e["message"] for e in user.deployment("e", revision)["events"]]


def test_a_new_version_stops_the_old_container_and_snapshots_its_volume_first(user, run, engine):
    env_id = first_deploy(user, run, engine)
    (old,) = [c for c in engine.running() if c.labels["io.catalog.service"] == "db"]
    publish(user, "2.0.0")
    engine.calls.clear()

    assert run(env_id, upgrade(user, "2.0.0")) == "succeeded"

    new = next(c for c in engine.running() if c.labels["io.catalog.service"] == "db")
    db_calls = [c for c in engine.calls if "_web_" not in c[1]]
    assert db_calls == [
        ("stop", old.name), ("snapshot", volume(env_id)), ("create", new.name),
        ("start", new.name), ("remove", old.name),
    ]  # fmt: skip
    (row,) = snapshots(user)
    snapshot = f"cat-snap-{env_id}_store_data_r2"
    assert row | {"created_at": None} == {
        "revision": 2, "app": "store", "service": "db", "volume": "data",
        "source_volume": volume(env_id), "snapshot_volume": snapshot, "size_bytes": 8,
        "seconds": 0.01, "status": "kept", "detail": "", "created_at": None,
    }  # fmt: skip
    assert engine.volume_files[snapshot] == {"/data/file": b"original"}
    labels = engine.volumes[snapshot]
    assert labels["io.catalog.env"] == env_id and labels["io.catalog.snapshot"] == "data"
    assert "io.catalog.volume" not in labels  # never taken for the app's own volume
    events = messages(user, 2)
    assert any(m == "stopping the old container first (its volumes are snapshotted)"
               for m in events)  # fmt: skip
    assert any(m.startswith(f"snapshot of volume data ({volume(env_id)}): 8 bytes in 0.0 s, "
                            f"kept as {snapshot}") for m in events)  # fmt: skip


def test_a_parameter_change_at_the_same_version_starts_beside_without_a_snapshot(user, run, engine):
    env_id = first_deploy(user, run, engine)
    user.call("PATCH", "/environments/e/apps/store", json={"parameters": {"body": "v2"}})
    engine.calls.clear()

    assert run(env_id, user.deploy("e")) == "succeeded"

    assert [c[0] for c in engine.calls if "_db_" in c[1]] == ["create", "start", "join", "remove"]
    assert snapshots(user) == []


def test_a_service_whose_data_migrates_is_snapshotted_at_the_same_version(user, run, engine):
    user.publish(package_bytes("org.acme.db", "1.0.0", parameters=BODY,
                               services={"db": db(data={"migrates": True})}))  # fmt: skip
    env_id = user.create_env("e")["id"]
    user.add_app("e", "store", "org.acme.db", version="1.0.0")
    assert run(env_id, user.deploy("e")) == "succeeded"
    user.call("PATCH", "/environments/e/apps/store", json={"parameters": {"body": "v2"}})

    assert run(env_id, user.deploy("e")) == "succeeded"

    assert [(s["revision"], s["status"]) for s in snapshots(user)] == [(2, "kept")]


def test_an_undone_upgrade_restores_the_volume_before_the_old_container_starts(user, run, engine):
    env_id = first_deploy(user, run, engine)
    publish(user, "2.0.0")
    writes_on_start(engine, env_id, b"migrated")
    engine.exit_on_start.add("db")  # 2.0.0 dies at once, after rewriting the file
    engine.calls.clear()

    assert run(env_id, upgrade(user, "2.0.0")) == "rolled_back"

    assert engine.volume_files[volume(env_id)] == {"/data/file": b"original"}
    calls = [c[0] for c in engine.calls if c[0] in ("snapshot", "restore", "start", "stop")]
    assert calls == ["stop", "snapshot", "start", "restore", "start"]  # the old one, last
    assert [s["status"] for s in snapshots(user)] == ["restored"]
    events = messages(user, 2)
    snapshot = f"cat-snap-{env_id}_store_data_r2"
    assert f"restored volume data from snapshot {snapshot}: 8 bytes in 0.0 s" in events
    assert any(m.startswith("undone: removed 1 new container(s), restored 1 volume(s)")
               for m in events)  # fmt: skip
    assert user.environment("e")["status"] == "deploy_failed"


def test_an_undo_before_any_new_container_ran_leaves_the_volume_and_keeps_the_snapshot(
    user, run, engine, monkeypatch
):
    env_id = first_deploy(user, run, engine)
    publish(user, "2.0.0")

    def refuse(params, files):  # after the snapshot, before anything new exists
        raise EngineError("no room for a new container")

    monkeypatch.setattr(engine, "create", refuse)
    engine.calls.clear()

    assert run(env_id, upgrade(user, "2.0.0")) == "rolled_back"

    assert not [c for c in engine.calls if c[0] == "restore"]
    assert engine.volume_files[volume(env_id)] == {"/data/file": b"original"}
    assert [s["status"] for s in snapshots(user)] == ["kept"]
    assert any("was not changed (no new container of store ran)" in m for m in messages(user, 2))


def test_a_restore_that_fails_keeps_the_snapshot_and_names_it(user, run, engine):
    env_id = first_deploy(user, run, engine)
    publish(user, "2.0.0")
    snapshot = f"cat-snap-{env_id}_store_data_r2"

    def lose_the_snapshot(container: FakeContainer) -> None:  # after the copy, before the undo
        if container.name.endswith("_r2") and snapshot in engine.volumes:
            del engine.volumes[snapshot]

    engine.on_start.append(lose_the_snapshot)
    engine.exit_on_start.add("db")

    assert run(env_id, upgrade(user, "2.0.0")) == "rolled_back"

    (row,) = snapshots(user)
    assert row["status"] == "failed"
    assert row["detail"] == f"restore failed: the snapshot volume {snapshot} is gone"
    environment = user.environment("e")
    assert environment["status"] == "deploy_failed"
    assert (f"volume data of store was not restored (the snapshot volume {snapshot} is gone); "
            f"its snapshot {snapshot} is kept") in environment["status_detail"]  # fmt: skip
    assert any(e["level"] == "error" and snapshot in e["message"]
               for e in user.deployment("e", 2)["events"])  # fmt: skip


def test_a_snapshot_that_cannot_be_made_fails_the_upgrade_before_anything_new_runs(
    user, run, engine
):
    env_id = first_deploy(user, run, engine)
    before = sorted(c.name for c in engine.running())
    publish(user, "2.0.0")
    engine.calls.clear()

    assert run(env_id, upgrade(user, "2.0.0"), SNAPSHOT_IMAGE="absent:latest") == "rolled_back"

    assert not [c for c in engine.calls if c[0] == "create"]
    assert sorted(c.name for c in engine.running()) == before  # the old one started again
    (row,) = snapshots(user)
    assert row["status"] == "failed"
    assert row["detail"].startswith("snapshot failed: the copy needs the image absent:latest")
    assert "snapshot of volume data failed" in user.environment("e")["status_detail"]


def test_snapshots_past_the_retention_are_pruned_after_a_later_success(user, run, engine):
    env_id = first_deploy(user, run, engine)
    for n, version in enumerate(("2.0.0", "3.0.0", "4.0.0"), start=2):
        publish(user, version)
        assert run(env_id, upgrade(user, version), SNAPSHOT_RETENTION=1) == "succeeded"
        assert f"cat-snap-{env_id}_store_data_r{n}" in engine.volumes

    # Revision 2's snapshot outlived 2 and one more success (3); 4 prunes it.
    assert [(s["revision"], s["status"]) for s in snapshots(user)] == [
        (4, "kept"), (3, "kept"), (2, "pruned"),
    ]  # fmt: skip
    assert f"cat-snap-{env_id}_store_data_r2" not in engine.volumes
    assert any(m.startswith(f"pruned snapshot cat-snap-{env_id}_store_data_r2 of volume data, "
                            "revision 2: past CATALOG_SNAPSHOT_RETENTION=1")
               for m in messages(user, 4))  # fmt: skip
    # The listing pages by revision, newest first.
    first = user.call("GET", "/environments/e/snapshots?limit=2")
    assert [s["revision"] for s in first["items"]] == [4, 3]
    rest = user.call("GET", f"/environments/e/snapshots?limit=2&cursor={first['next_cursor']}")
    assert [s["revision"] for s in rest["items"]] == [2] and rest["next_cursor"] is None


def test_another_tenant_sees_no_snapshots(user, run, engine, make_caller, client):
    first_deploy(user, run, engine)
    other = Deployer(client, make_caller("other", "viewer").headers)
    other.call("GET", "/environments/e/snapshots", expect=404)
    viewer = Deployer(client, make_caller("acme", "viewer").headers)
    assert viewer.call("GET", "/environments/e/snapshots") == {"items": [], "next_cursor": None}
    user.call("GET", "/environments/e/snapshots?cursor=bad", expect=400)
