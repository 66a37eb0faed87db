"""Which volumes a revision snapshots, and which snapshots retention removes, on plain values."""

from __future__ import annotations

from dataclasses import replace

import pytest

from packages.errors import ManifestValidationError
from packages.manifest import validate_manifest
from workers.deploy.planner import DesiredContainer, ObservedContainer, Step, Strategy, plan
from workers.deploy.snapshot_rules import (
    VolumeToSnapshot,
    guarded_services,
    past_retention,
    volumes_to_snapshot,
)


def app(version: str = "1.0.0", package: str = "org.test.db", **services: dict) -> dict:
    return {"name": "db", "package": package, "version": version,
            "manifest": {"services": services}}  # fmt: skip


def mounts(*names: str, read_only: bool = False, **extra) -> dict:
    volumes = [{"name": n, "path": f"/{n}", "read_only": read_only} for n in names]
    return {"image": "busybox", "volumes": volumes, **extra}


MIGRATES = {"data": {"migrates": True}}


# -- which services are guarded ----------------------------------------------------------------


def test_a_new_version_guards_each_service_mounting_a_volume_the_app_had():
    before = [app("1.0.0", main=mounts("data"), side=mounts("logs"), web={"image": "busybox"})]
    after = [app("2.0.0", main=mounts("data", "cache"), side=mounts("logs"), web={"image": "x"})]
    # `cache` is new (nothing in it yet); `web` mounts nothing.
    assert guarded_services(after, before) == {("db", "main"): ("data",), ("db", "side"): ("logs",)}


def test_another_package_under_the_same_app_name_is_a_change_too():
    before = [app("1.0.0", main=mounts("data"))]
    after = [app("1.0.0", package="org.other.db", main=mounts("data"))]
    assert guarded_services(after, before) == {("db", "main"): ("data",)}


def test_the_same_version_guards_only_services_that_say_their_data_migrates():
    before = [app("1.0.0", main=mounts("data"), side=mounts("logs"))]
    after = [app("1.0.0", main=mounts("data", **MIGRATES), side=mounts("logs"))]
    assert guarded_services(after, before) == {("db", "main"): ("data",)}
    assert guarded_services([app("1.0.0", main=mounts("data"))], before) == {}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, [app("2.0.0", main=mounts("data"))]),  # nothing serves: no data yet
        ([], [app("2.0.0", main=mounts("data"))]),  # the app is new in this revision
        ([app(main=mounts("data"))], [app("2.0.0", main=mounts("data", read_only=True))]),
        ([app(main={"image": "busybox"})], [app("2.0.0", main=mounts("data", **MIGRATES))]),
    ],
    ids=["first-deploy", "new-app", "read-only-mount", "volume-new-in-this-version"],
)
def test_nothing_is_guarded_without_data_the_revision_could_change(before, after):
    assert guarded_services(after, before) == {}


# -- which volumes are snapshotted -------------------------------------------------------------


def step(service: str, container: str | None, app_name: str = "db") -> Step:
    return Step(Strategy.STOP_FIRST, app_name, service, 0, container, "config changed")


def test_each_app_volume_is_snapshotted_once_for_the_replaced_services():
    guarded = {("db", "main"): ("data", "wal"), ("db", "side"): ("data",), ("db", "new"): ("x",)}
    start = [step("side", "c2"), step("main", "c1"), step("new", None), step("web", "c3")]
    assert volumes_to_snapshot(start, guarded) == [
        VolumeToSnapshot("db", "main", "data", "c1"),
        VolumeToSnapshot("db", "main", "wal", "c1"),
    ]  # a new slot replaces nothing; an unguarded service is started as planned


def test_a_guarded_service_is_replaced_stop_first_and_others_beside():
    wanted = [
        DesiredContainer("db", "main", 0, "h2", publishes_ports=False, snapshots_volumes=True),
        DesiredContainer("db", "web", 0, "h2", publishes_ports=False),
    ]
    observed = [
        ObservedContainer(f"c-{s}", s, "db", s, 0, 1, 1, "h1", running=True)
        for s in ("main", "web")
    ]
    the_plan = plan(wanted, observed, revision=2, fencing=1)
    assert {(s.service, s.strategy, s.container_id) for s in the_plan.start} == {
        ("main", Strategy.STOP_FIRST, "c-main"),
        ("web", Strategy.START_BESIDE, "c-web"),
    }
    # Kept when nothing changed, whatever it mounts.
    kept = plan([replace(wanted[0], config_hash="h1")], observed[:1], revision=2, fencing=1)
    assert [s.strategy for s in kept.keep] == [Strategy.KEEP] and not kept.start


# -- retention ---------------------------------------------------------------------------------


def test_a_snapshot_outlives_its_first_success_and_retention_more():
    snapshots = [("s3", 3)]
    assert past_retention(snapshots, [1, 3, 4, 5], retention=2) == []
    assert past_retention(snapshots, [1, 3, 4, 5, 6], retention=2) == ["s3"]
    assert past_retention(snapshots, [1, 3], retention=0) == []  # the revision that serves
    assert past_retention(snapshots, [1, 3, 4], retention=0) == ["s3"]


def test_an_undone_revisions_snapshot_counts_from_the_next_success():
    # Revision 2 failed and was rolled back (its snapshot restored); 3 is the next success.
    assert past_retention([("s2", 2)], [1, 3, 4], retention=1) == []
    assert past_retention([("s2", 2)], [1, 3, 4, 5], retention=1) == ["s2"]
    assert past_retention([("s2", 2)], [1], retention=0) == []  # no success after it yet


def test_retention_picks_only_the_old_snapshots():
    snapshots = [("a", 2), ("b", 2), ("c", 4), ("d", 6)]
    assert past_retention(snapshots, [1, 2, 3, 4, 5, 6], retention=2) == ["a", "b"]


# -- the manifest's `data` field ---------------------------------------------------------------

SERVICE = {"image": "busybox:1.36", "volumes": [{"name": "data", "path": "/data"}]}


def manifest(service: dict) -> dict:
    return {"format": "catalog/v1", "name": "org.example.db", "version": "1.0.0",
            "type": "application", "services": {"db": service}}  # fmt: skip


def test_a_service_may_say_its_data_migrates():
    found = validate_manifest(manifest({**SERVICE, "data": {"migrates": True}}))
    assert found.services["db"]["data"] == {"migrates": True}


@pytest.mark.parametrize(
    ("service", "problem"),
    [
        ({**SERVICE, "data": "migrates"}, ("services.db.data", "must be a mapping")),
        ({**SERVICE, "data": {"migrates": "yes"}},
         ("services.db.data.migrates", "must be true or false")),
        ({**SERVICE, "data": {"keep": True}}, ("services.db.data.keep", "unknown key")),
        ({"image": "busybox:1.36", "data": {"migrates": True}},
         ("services.db.data.migrates", "the service mounts no writable named volume")),
        ({"image": "busybox:1.36", "data": {"migrates": True},
          "volumes": [{"name": "data", "path": "/data", "read_only": True}]},
         ("services.db.data.migrates", "the service mounts no writable named volume")),
    ],
    ids=["a-string", "not-a-boolean", "unknown-key", "no-volume", "read-only-volume"],
)  # fmt: skip
def test_a_data_field_is_refused_naming_it(service, problem):
    with pytest.raises(ManifestValidationError) as caught:
        validate_manifest(manifest(service))
    assert problem in [(p.path, p.message) for p in caught.value.problems]
