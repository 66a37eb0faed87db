"""Volume snapshots on the real engine: an upgrade that changes a volume's data and fails is
undone with the data as it was; a restore that cannot be made keeps the snapshot and says so;
snapshots past the retention are pruned.

A real `catalogctl worker` deploys (its helper image is the test image, CATALOG_SNAPSHOT_IMAGE
from the `worker_env` fixture); the tests read the volumes through the containers (`exec cat`)
and the snapshot volumes on the engine by their labels.
"""

from __future__ import annotations

import re

import docker.errors
import pytest

from tests.conftest import TEST_IMAGE
from tests.integration.conftest import package_bytes
from tests.integration.stack import Deployer
from tests.integration.test_deploy import (
    RESOURCES,
    container_of,
    deploy_ok,
    engine_leftovers,
    env_gone,
    error_events,
    patch_app,
    running_ids,
)
from tests.polling import eventually

# PID 1 a shell that ends on TERM: the old container stops at once when it is stopped first.
IDLE = "trap 'exit 0' TERM; while :; do sleep 0.2; done"
NEVER_READY = {  # nothing listens on 9000: not ready after 4 x (0.2 + 0.5) s
    "http": {"port": 9000, "path": "/"}, "interval": "200ms", "timeout": "500ms", "retries": 4,
}  # fmt: skip


def store(version: str, script: str, **service) -> bytes:
    """org.test.store at `version`: one service `db` running `script` with volume `data`."""
    db = {
        "image": TEST_IMAGE,
        "command": ["sh", "-c", script],
        "environment": {"VERSION": version},
        "volumes": [{"name": "data", "path": "/data"}],
        "resources": RESOURCES,
        **service,
    }
    return package_bytes("org.test.store", version, services={"db": db})


# 1.0.0 writes its file once, into an empty volume; a restarted 1.0.0 leaves it as it is.
V1 = store("1.0.0", f"[ -e /data/file ] || echo original > /data/file; {IDLE}")
# 2.0.0 migrates the file, then never becomes ready.
V2 = store(
    "2.0.0", f"echo migrated > /data/file; echo 'migrated the file'; {IDLE}",
    healthcheck=NEVER_READY,
)  # fmt: skip


def read_file(docker_client, env_id: str) -> str:
    result = container_of(docker_client, env_id, "s", "db").exec_run(["cat", "/data/file"])
    assert result.exit_code == 0, result.output
    return result.output.decode().strip()


def snapshot_volumes(docker_client, env_id: str) -> dict[str, dict[str, str]]:
    """name -> labels of the environment's snapshot volumes on the engine."""
    found = docker_client.volumes.list(filters={"label": [f"io.catalog.env={env_id}",
                                                          "io.catalog.snapshot"]})  # fmt: skip
    return {v.name: v.attrs["Labels"] for v in found}


def snapshots(deployer: Deployer, env: str) -> list[dict]:
    return deployer.call("GET", f"/environments/{env}/snapshots")["items"]


def one_event(deployment: dict, pattern: str) -> dict:
    (event,) = [e for e in deployment["events"] if re.search(pattern, e["message"])]
    return event


def test_an_undone_upgrade_gives_the_old_version_its_own_data_back(
    deployer, start_worker, docker_client
):
    start_worker()
    deployer.publish(V1)
    deployer.publish(V2)
    env_id = deployer.create_env("undo")["id"]
    deployer.add_app("undo", "s", "org.test.store", version="1.0.0")
    deploy_ok(deployer, "undo")
    assert read_file(docker_client, env_id) == "original"
    before = running_ids(docker_client, env_id)

    patch_app(deployer, "undo", "s", version="2.0.0")
    deployment = deployer.wait("undo", deployer.deploy("undo"))

    assert deployment["status"] == "rolled_back", deployment["events"]
    # The very same 1.0.0 container runs again, on the file as it was before 2.0.0 changed it.
    assert running_ids(docker_client, env_id) == before
    assert read_file(docker_client, env_id) == "original"
    (failure,) = [e for e in error_events(deployment) if e["service"] == "db"]
    assert "migrated the file" in failure["message"]  # 2.0.0 did rewrite it
    snapshot = f"cat-snap-{env_id}_s_data_r2"
    took = one_event(deployment, r"^snapshot of volume data ")["message"]
    assert re.fullmatch(rf"snapshot of volume data \(cat-{env_id}_s_data\): \d+ bytes in "
                        rf"\d+\.\d s, kept as {snapshot}", took), took  # fmt: skip
    restored = one_event(deployment, r"^restored volume data ")["message"]
    assert re.fullmatch(rf"restored volume data from snapshot {snapshot}: \d+ bytes in "
                        r"\d+\.\d s", restored), restored  # fmt: skip
    # Stopped first, snapshotted, and the restore came before the old container started.
    order = [e["message"] for e in deployment["events"]]
    stop = order.index("stopping the old container first (its volumes are snapshotted)")
    assert stop < order.index(took) < order.index(restored)
    assert order.index(restored) < next(i for i, m in enumerate(order) if m.startswith("undone"))
    (row,) = snapshots(deployer, "undo")
    assert (row["revision"], row["service"], row["status"]) == (2, "db", "restored")
    assert row["size_bytes"] > 0 and row["snapshot_volume"] == snapshot
    labels = snapshot_volumes(docker_client, env_id)[snapshot]
    assert labels["io.catalog.snapshot"] == "data" and labels["io.catalog.app"] == "s"
    every = docker_client.containers.list(all=True, filters={"label": f"io.catalog.env={env_id}"})
    assert [c.name for c in every if c.name.startswith("cat-copy-")] == []  # helpers gone


def test_a_restore_that_fails_keeps_the_snapshot_and_the_environment_names_it(
    deployer, start_worker, docker_client
):
    """The snapshot is made incomplete while 2.0.0 waits to be ready (its `complete` marker
    removed, as a copy cut short would leave it): the restore refuses it before touching the
    volume, and nothing deletes it."""
    start_worker()
    deployer.publish(V1)
    waits = "echo migrated > /data/file; while [ ! -e /tmp/die ]; do sleep 0.1; done; exit 1"
    deployer.publish(store("2.0.0", waits, healthcheck={**NEVER_READY, "start_period": "60s"}))
    env_id = deployer.create_env("keep")["id"]
    deployer.add_app("keep", "s", "org.test.store", version="1.0.0")
    deploy_ok(deployer, "keep")
    patch_app(deployer, "keep", "s", version="2.0.0")
    revision = deployer.deploy("keep")
    snapshot = f"cat-snap-{env_id}_s_data_r2"

    def new_container():
        # By its service label: the helper copying the volume carries the revision's too.
        ids = [
            c.id
            for c in docker_client.containers.list(
                filters={
                    "label": [
                        f"io.catalog.env={env_id}",
                        "io.catalog.revision=2",
                        "io.catalog.service=db",
                    ]
                }
            )
        ]
        return ids[0] if ids else None  # fmt: skip

    eventually(new_container, 30, "the 2.0.0 container running")  # so the snapshot is made
    docker_client.containers.run(TEST_IMAGE, ["rm", "/s/complete"], remove=True,
                                 volumes={snapshot: {"bind": "/s", "mode": "rw"}})  # fmt: skip
    docker_client.containers.get(new_container()).exec_run(["touch", "/tmp/die"])
    deployment = deployer.wait("keep", revision)

    assert deployment["status"] == "rolled_back", deployment["events"]
    environment = deployer.environment("keep")
    assert environment["status"] == "deploy_failed"
    assert f"its snapshot {snapshot} is kept" in environment["status_detail"]
    assert "the snapshot is incomplete" in environment["status_detail"]
    (row,) = snapshots(deployer, "keep")
    assert row["status"] == "failed" and "the snapshot is incomplete" in row["detail"]
    assert snapshot in snapshot_volumes(docker_client, env_id)  # still on the engine
    error = one_event(deployment, r"^volume data of s was not restored")
    assert error["level"] == "error" and snapshot in error["message"]
    # Its copy is whole: what 1.0.0 wrote is there to restore by hand.
    copied = docker_client.containers.run(
        TEST_IMAGE,
        ["cat", "/s/data/file"],
        remove=True,
        volumes={snapshot: {"bind": "/s", "mode": "ro"}},
    )
    assert copied.decode().strip() == "original"


def test_snapshots_past_the_retention_go_after_later_successes(
    deployer, start_worker, docker_client
):
    start_worker(CATALOG_SNAPSHOT_RETENTION="1")
    script = f"echo $VERSION > /data/file; {IDLE}"
    for version in ("1.0.0", "1.1.0", "1.2.0", "1.3.0"):
        deployer.publish(store(version, script))
    env_id = deployer.create_env("keepn")["id"]
    deployer.add_app("keepn", "s", "org.test.store", version="1.0.0")
    deploy_ok(deployer, "keepn")
    for version in ("1.1.0", "1.2.0"):
        patch_app(deployer, "keepn", "s", version=version)
        deploy_ok(deployer, "keepn")
    assert sorted(snapshot_volumes(docker_client, env_id)) == [
        f"cat-snap-{env_id}_s_data_r2", f"cat-snap-{env_id}_s_data_r3",
    ]  # fmt: skip

    patch_app(deployer, "keepn", "s", version="1.3.0")
    fourth = deploy_ok(deployer, "keepn")

    assert [(s["revision"], s["status"]) for s in snapshots(deployer, "keepn")] == [
        (4, "kept"), (3, "kept"), (2, "pruned"),
    ]  # fmt: skip
    assert sorted(snapshot_volumes(docker_client, env_id)) == [
        f"cat-snap-{env_id}_s_data_r3", f"cat-snap-{env_id}_s_data_r4",
    ]  # fmt: skip
    one_event(fourth, rf"^pruned snapshot cat-snap-{env_id}_s_data_r2 ")
    assert read_file(docker_client, env_id) == "1.3.0"
    # The environment's teardown takes its snapshots with it.
    deployer.call("DELETE", "/environments/keepn", expect=202)
    eventually(lambda: env_gone(deployer, "keepn"), 30, "the environment gone")
    assert engine_leftovers(docker_client, env_id) == []


def test_a_snapshot_holding_the_restores_staging_name_is_refused_before_the_volume_is_touched(
    docker_client, engine_labels
):
    from workers.engine.docker_volumes import RESTORE_SCRIPT

    snapshot = docker_client.volumes.create(labels=engine_labels)
    target = docker_client.volumes.create(labels=engine_labels)
    docker_client.containers.run(
        TEST_IMAGE, ["sh", "-c", "mkdir -p /s/data/.catalog-restore && touch /s/complete"],
        volumes={snapshot.name: {"bind": "/s"}}, remove=True,
    )  # fmt: skip
    docker_client.containers.run(TEST_IMAGE, ["sh", "-c", "echo mine > /d/file"],
                                 volumes={target.name: {"bind": "/d"}}, remove=True)  # fmt: skip
    with pytest.raises(docker.errors.ContainerError) as refused:
        docker_client.containers.run(
            TEST_IMAGE, ["sh", "-c", RESTORE_SCRIPT], remove=True,
            volumes={snapshot.name: {"bind": "/from", "mode": "ro"}, target.name: {"bind": "/to"}},
        )  # fmt: skip
    assert b"the snapshot holds .catalog-restore" in refused.value.stderr
    kept = docker_client.containers.run(TEST_IMAGE, ["cat", "/d/file"], remove=True,
                                        volumes={target.name: {"bind": "/d"}})  # fmt: skip
    assert kept == b"mine\n"
