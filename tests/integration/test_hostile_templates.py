"""Hostile templates on the real stack: a runaway or memory-hungry template fails its deploy
within its limit, naming the file, and the worker deploys the next environment at once.

One worker slot (`--concurrency=1`) serves both environments, so the good one can only
start once the hostile one has let go of the slot.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.conftest import package_bytes
from tests.integration.test_deploy import web
from tests.polling import eventually

LIMIT_SECONDS = 2
LIMIT_MB = 64
RUNAWAY = (
    "{% set s = 'x' * 1000 %}{% for a in s %}{% for b in s %}{% for c in s %}{% for d in s %}"
    "{% endfor %}{% endfor %}{% endfor %}{% endfor %}"
)
MEMORY = "{{ ('a' * 100000) | replace('a', 'b' * 100000) }}"


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants, without render children (their memory is theirs, bounded)."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            ppid = int(re.search(r"^PPid:\s+(\d+)", status.read_text(), re.M).group(1))
        except (OSError, AttributeError):
            continue
        children.setdefault(ppid, []).append(int(status.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            command = Path(f"/proc/{current}/cmdline").read_bytes()
        except OSError:
            continue
        if b"packages.render_child" not in command:
            found.append(current)
        todo += children.get(current, [])
    return found


def peak_rss_mb(pid: int) -> dict[int, float]:
    """Each worker process's peak resident memory (VmHWM), in MB."""
    peaks = {}
    for member in _tree(pid):
        match = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{member}/status").read_text(), re.M)
        if match:
            peaks[member] = int(match.group(1)) / 1024
    return peaks


@pytest.mark.parametrize(("template", "reason"), [
    (RUNAWAY, f"rendering took longer than {LIMIT_SECONDS} s"),
    (MEMORY, f"the template needs more than {LIMIT_MB} MB of memory"),
])  # fmt: skip
def test_a_hostile_template_fails_its_deploy_and_the_worker_serves_the_next(
    deployer, start_worker, template: str, reason: str
) -> None:
    worker = start_worker(
        CATALOG_RENDER_TIME_LIMIT_SECONDS=str(LIMIT_SECONDS), CATALOG_RENDER_MEMORY_MB=str(LIMIT_MB)
    )
    hostile = web(9000, "never")
    hostile["files"] = {"/etc/app.conf": "files/app.conf.j2"}
    deployer.publish(package_bytes("org.test.hostile", "1.0.0", services={"api": hostile},
                                   files={"files/app.conf.j2": template.encode()}))  # fmt: skip
    deployer.publish(package_bytes("org.test.fine", "1.0.0", services={"api": web(9000, "ok")}))
    deployer.create_env("bad")
    deployer.add_app("bad", "svc", "org.test.hostile")
    deployer.create_env("good")
    deployer.add_app("good", "svc", "org.test.fine")
    before = peak_rss_mb(worker.process.pid)

    bad_revision = deployer.deploy("bad")
    good_revision = deployer.deploy("good")  # queued behind: the worker has one slot
    bad = deployer.wait("bad", bad_revision, seconds=10 + LIMIT_SECONDS + 30)
    good = deployer.wait("good", good_revision)

    assert bad["status"] == "failed", bad["events"]
    assert "files/app.conf.j2" in bad["error"] and reason in bad["error"], bad["error"]
    assert deployer.environment("bad")["status"] == "deploy_failed"
    assert _seconds(bad["finished_at"]) - _seconds(bad["started_at"]) < 10 + LIMIT_SECONDS
    assert good["status"] == "succeeded", good["events"]
    assert _seconds(good["started_at"]) - _seconds(bad["finished_at"]) < 2
    after = peak_rss_mb(worker.process.pid)
    growth = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    assert max(growth.values()) < LIMIT_MB, growth


def test_a_cancel_stops_a_runaway_render_at_once(deployer, start_worker) -> None:
    start_worker(CATALOG_RENDER_TIME_LIMIT_SECONDS="120")
    hostile = web(9000, RUNAWAY)  # in an environment value this time, not a file
    deployer.publish(package_bytes("org.test.hostile", "1.0.0", services={"api": hostile}))
    deployer.create_env("bad")
    deployer.add_app("bad", "svc", "org.test.hostile")
    revision = deployer.deploy("bad")
    eventually(
        lambda: deployer.deployment("bad", revision)["status"] == "running", 30, "render started"
    )

    deployer.call("POST", f"/environments/bad/deployments/{revision}/cancel", expect=202)
    asked = time.time()
    deployment = deployer.wait("bad", revision, seconds=30)

    assert deployment["status"] == "cancelled", deployment["events"]
    assert _seconds(deployment["finished_at"]) - asked < 3
