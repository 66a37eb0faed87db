"""What one package may ask of a shared engine: durations, counts and file targets (G47)."""

from __future__ import annotations

import copy
import io

import pytest
import yaml

from catalog import config
from catalog.queue import ACTION_TASK, DEPLOY_TASK, TEARDOWN_TASK, make_celery
from packages.bounds import files_bytes_problem, forbidden_target, normalised_target
from packages.container import ContainerTarget, container_params, readiness_timeout
from packages.errors import ManifestValidationError
from packages.limits import Limits, MiB
from packages.manifest import validate_manifest
from packages.package import load_package
from tests.archives import make_targz
from tests.unit.test_manifest import MINIMAL as BASE
from workers.actions import action_timeout
from workers.engine.execs import HeadTail


def _with(**web) -> dict:
    doc = copy.deepcopy(BASE)
    doc["services"]["web"].update(web)
    return doc


def _problems(doc: dict) -> list[tuple[str, str]]:
    with pytest.raises(ManifestValidationError) as caught:
        validate_manifest(doc)
    return [(p.path, p.message) for p in caught.value.problems]


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "path", "message"),
    [
        (
            {"interval": "6m"},
            "services.web.healthcheck.interval",
            "6m is longer than the limit of 5m",
        ),
        ({"timeout": "301s"}, "services.web.healthcheck.timeout", "longer than the limit of 5m"),
        (
            {"start_period": "999999h"},
            "services.web.healthcheck.start_period",
            "999999h is longer than the limit of 10m",
        ),
    ],
)
def test_each_healthcheck_duration_is_bounded(check, path, message):
    found = _problems(_with(healthcheck={"tcp": {"port": 80}, **check}))
    assert any(p == path and message in m for p, m in found), found


def test_the_whole_readiness_window_is_bounded():
    # Each duration is allowed, but 100 rounds of 10 s add up to far more than 15 min.
    check = {"tcp": {"port": 80}, "interval": "5s", "timeout": "5s", "retries": 100}
    assert _problems(_with(healthcheck=check)) == [
        (
            "services.web.healthcheck",
            "start_period + retries x (interval + timeout) is 1000s; "
            "the readiness window is at most 15m",
        )
    ]


def test_a_window_within_the_bounds_is_accepted():
    check = {"tcp": {"port": 80}, "interval": "5m", "timeout": "10s", "start_period": "4m"}
    validate_manifest(_with(healthcheck={**check, "retries": 2}))


def test_stop_grace_period_is_bounded():
    assert _problems(_with(stop_grace_period="1h")) == [
        ("services.web.stop_grace_period", "1h is longer than the limit of 5m")
    ]


@pytest.mark.parametrize(
    ("timeout", "message"),
    [("11m", "11m is longer than the limit of 10m"), ("0s", "must be longer than 0s")],
)
def test_an_action_timeout_is_bounded(timeout, message):
    doc = {**BASE, "actions": {"dump": {"service": "web", "command": ["x"], "timeout": timeout}}}
    assert _problems(doc) == [("actions.dump.timeout", message)]


def test_an_action_timeout_defaults_to_a_minute_and_is_capped_at_run_time():
    assert action_timeout({"command": ["x"]}) == 60.0
    assert action_timeout({"command": ["x"], "timeout": "2m"}) == 120.0
    assert action_timeout({"command": ["x"], "timeout": "999h"}) == 600.0  # stored before


def test_a_package_stored_before_the_bounds_waits_no_longer_than_the_window():
    legacy = {"healthcheck": {"command": "true", "start_period": "999999h", "interval": "99h"}}
    assert readiness_timeout(legacy) == 900.0
    target = ContainerTarget(name="c", hostname="h", image="sha256:1", network="env-net")
    check = container_params({**legacy, "image": "x"}, target)["healthcheck"]
    assert check["start_period"] == 600 * 10**9
    assert check["interval"] == 300 * 10**9


def test_task_time_limits_come_from_the_settings():
    settings = config.load(
        {"CATALOG_HOME": "/nonexistent", "CATALOG_DEPLOY_TIME_LIMIT_SECONDS": "100"}
    )
    limits = make_celery(settings).conf.task_annotations
    assert limits[DEPLOY_TASK] == {"soft_time_limit": 130.0, "time_limit": 250.0}
    assert limits[TEARDOWN_TASK] == {"soft_time_limit": 600.0, "time_limit": 720.0}
    assert limits[ACTION_TASK] == {"soft_time_limit": 900.0, "time_limit": 1020.0}


# --- counts ----------------------------------------------------------------------------------


def test_services_per_package_are_bounded():
    doc = copy.deepcopy(BASE)
    doc["services"] = {f"s{i}": {"image": "nginx:1.25"} for i in range(33)}
    assert _problems(doc) == [("services", "has 33 services; at most 32")]


def test_published_ports_per_package_are_bounded_over_all_services():
    doc = copy.deepcopy(BASE)
    ports = [{"container": 1000 + p, "publish": True} for p in range(16)]
    doc["services"] = {f"s{i}": {"image": "nginx:1.25", "ports": ports} for i in range(3)}
    assert _problems(doc) == [
        ("services.s2.ports[0].publish", "more than 32 published ports in the package")
    ]


def test_unpublished_ports_do_not_count():
    ports = [{"container": 1000 + p} for p in range(64)]
    validate_manifest(_with(ports=ports))


def test_file_targets_per_service_and_per_package_are_bounded():
    files = {f"/etc/f{i}": "files/a" for i in range(65)}
    assert _problems(_with(files=files)) == [
        ("services.web.files", "has 65 targets; at most 64 per service")
    ]
    doc = copy.deepcopy(BASE)
    few = {f"/etc/f{i}": "files/a" for i in range(60)}
    doc["services"] = {f"s{i}": {"image": "nginx:1.25", "files": few} for i in range(5)}
    assert _problems(doc) == [("services", "the services have 300 file targets; at most 256")]


# --- targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("root", ["/proc", "/sys", "/dev"])
def test_files_and_volumes_never_land_in_kernel_interfaces(root):
    found = _problems(
        _with(
            files={f"{root}/self/x": "files/a", root + "x/ok": "files/a"},
            volumes=[{"name": "data", "path": root}],
        )
    )
    assert found == [
        (f'services.web.files["{root}/self/x"]', f"must not write under {root}"),
        ("services.web.volumes[0].path", f"must not mount over {root}"),
    ]


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("/./proc/sys", "/proc"),
        ("//proc", "/proc"),
        ("/a/../proc/1", "/proc"),
        ("/etc/../../sys", "/sys"),
        ("/dev", "/dev"),
        ("/devices/x", None),
        ("/etc/proc", None),
    ],
)
def test_targets_are_normalised_before_the_check(path, root):
    assert forbidden_target(path) == root
    assert normalised_target("//a//b/./c/..") == "/a/b"


def test_one_member_fanned_out_counts_once_per_target():
    services = {"web": {"files": {f"/etc/f{i}": "files/big" for i in range(64)}}}
    problem = files_bytes_problem(services, lambda member: 5 * MiB)
    assert problem is not None
    path, message = problem
    assert path == ("services", "web", "files", "/etc/f51")  # 52 x 5 MiB > 256 MiB
    assert "more than 256 MiB" in message
    assert files_bytes_problem(services, lambda member: 4 * MiB) is None


def test_an_archive_whose_files_add_up_too_far_is_refused_at_upload():
    doc = _with(files={f"/etc/f{i}": "files/a" for i in range(4)})
    archive = make_targz([("manifest.yaml", yaml.safe_dump(doc).encode()), ("files/a", b"x" * 300)])
    with pytest.raises(ManifestValidationError) as caught:
        load_package(io.BytesIO(archive), Limits(max_files_bytes=1000))
    (problem,) = caught.value.problems
    assert problem.path == 'services.web.files["/etc/f3"]'
    load_package(io.BytesIO(archive), Limits(max_files_bytes=1200))


# --- output --------------------------------------------------------------------------------


def test_output_keeps_its_head_and_tail_and_says_what_was_cut():
    output = HeadTail(keep=4)
    for chunk in (b"ab", b"cdef", b"ghij", b"kl"):
        output.add(chunk)
    assert (bytes(output.head), bytes(output.tail), output.cut, output.total) == (
        b"abcd", b"ijkl", 4, 12,
    )  # fmt: skip
    assert output.text() == "abcd\n[... 4 bytes of output cut ...]\nijkl"


def test_short_output_is_kept_whole():
    output = HeadTail(keep=4)
    output.add(b"abcdefg")
    assert (output.cut, output.text()) == (0, "abcdefg")
