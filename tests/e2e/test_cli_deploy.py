"""`catalogctl` deploying for real: the API on PostgreSQL, a worker over RabbitMQ, the engine.

Environments and apps, deploy with live progress, failures and rollback as exit codes, events,
logs, actions, cancel, delete. Every engine object of the test's environments is removed
afterwards (`engine_cleanup`).
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import threading
import time

import pytest

from tests.e2e.conftest import BIN, fetch
from tests.e2e.packages import broken_service, slow_service, write_package

pytestmark = pytest.mark.usefixtures("engine_cleanup", "worker")


def test_an_environment_from_creation_to_deletion(cli, tmp_path):
    cli("package", "publish", str(write_package(tmp_path, "org.test.echo", "1.0.0")))
    created = cli("env", "create", "shop", "--description", "a shop", "--set", "tier=1")
    assert created.stdout.strip() == "created environment shop"
    cli("env", "update", "shop", "--set", "region=eu", "--unset", "tier")
    listed = cli("env", "list").stdout.splitlines()
    assert listed[1].split()[:5] == ["shop", "new", "-", "no", "0"]
    assert cli.json("env", "show", "shop")["settings"] == {"region": "eu"}

    added = cli("app", "add", "shop", "web", "--package", "org.test.echo", "-p", "who=alice")
    assert added.stdout.strip() == "added web (org.test.echo 1.0.0) to shop"
    apps = cli("app", "list", "shop").stdout.splitlines()
    assert apps[1].split()[:5] == ["web", "org.test.echo", "1.0.0", "-", "pending"]

    deployed = cli("deploy", "shop")
    lines = deployed.stdout.splitlines()
    assert lines[0].endswith("revision 1 queued")
    assert any(line.endswith("revision 1 is ready") for line in lines), lines
    assert lines[-1].startswith("revision 1 of shop is deployed in ")
    url = cli("app", "endpoint", "shop", "web").stdout.strip()
    assert url.startswith("http://127.0.0.1:")
    assert fetch(url) == "alice"

    shown = cli("env", "show", "shop").stdout
    assert "status:          ready" in shown
    assert "web:8080->127.0.0.1:" in shown
    assert cli.json("app", "show", "shop", "web")["parameters"] == {"who": "alice"}

    cli("app", "update", "shop", "web", "-p", "who=bob")
    assert cli.json("env", "show", "shop")["has_pending_changes"] is True
    cli("deploy", "shop")
    assert fetch(url, expect="bob") == "bob"

    history = cli.json("deployment", "list", "shop")
    assert [(d["revision"], d["status"]) for d in history] == [(2, "succeeded"), (1, "succeeded")]
    detail = cli("deployment", "show", "shop", "2").stdout
    assert "status:        succeeded" in detail
    assert "revision 2 is ready" in detail
    events = cli.json("events", "shop", "--revision", "1")
    assert events[0]["message"] == "revision 1 queued"
    assert events[-1]["message"] == "revision 1 is ready"

    logs = cli("logs", "shop", "web").stdout
    assert "hello from bob" in logs
    assert cli("logs", "shop", "web", "--tail", "1").stdout.strip() == "hello from bob"
    follower = subprocess.Popen(
        [BIN / "catalogctl", "logs", "shop", "web", "--follow"],
        env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert select.select([follower.stdout], [], [], 30)[0], "nothing followed in 30 s"
        assert follower.stdout.readline().strip() == "hello from bob"
    finally:
        follower.send_signal(signal.SIGINT)  # Ctrl-C ends a follow quietly
    assert follower.wait(timeout=30) == 0, follower.communicate()
    follower.communicate()

    greeted = cli("action", "run", "shop", "web", "greet", "-p", "name=carol")
    assert greeted.stdout.splitlines() == ["hi carol", "greet on web: succeeded"]
    failed = cli("action", "run", "shop", "web", "fail", code=1)
    assert failed.stdout.strip() == "oops"
    assert failed.stderr.strip() == (
        "Error: fail on web failed (exit code 3): the command exited with code 3"
    )
    queued = cli.json("action", "run", "shop", "web", "restart", "--no-wait")
    task = cli("action", "show", "shop", queued["id"]).stdout
    assert "action:    restart" in task
    invalid = cli("action", "run", "shop", "web", "greet", code=1)
    assert invalid.stderr.startswith("Error: 400 ")

    cli("app", "remove", "shop", "web", "--yes")
    assert cli.json("app", "list", "shop") == []
    refused = cli("env", "delete", "shop", code=1)
    assert "pass --yes" in refused.stderr
    assert cli("env", "delete", "shop", "--yes").stdout.strip() == "deleted environment shop"
    assert cli("env", "show", "shop", code=1).stderr.startswith("Error: 404 Not Found")


def test_a_failed_upgrade_exits_non_zero_with_the_reason_and_a_rollback_restores(cli, tmp_path):
    cli("package", "publish", str(write_package(tmp_path, "org.test.echo", "1.0.0")))
    cli("package", "publish", str(write_package(tmp_path, "org.test.echo", "2.0.0",
                                                services={"web": broken_service()})))  # fmt: skip
    cli("env", "create", "up")
    cli("app", "add", "up", "web", "--package", "org.test.echo", "--version", "1.0.0")
    cli("deploy", "up")
    url = cli("app", "endpoint", "up", "web").stdout.strip()

    cli("app", "update", "up", "web", "--version", "2.0.0")
    failed = cli("deploy", "up", code=1)
    assert "cannot read my config" in failed.stdout  # the failing container's last log lines
    assert failed.stderr.strip() == (
        "Error: revision 2 failed and was rolled back (revision 1 keeps serving): "
        "web/web: not ready within 2.8 s (healthcheck window)"
    )
    assert fetch(url) == "the test"  # revision 1 still serves
    assert cli.json("env", "show", "up")["status"] == "deploy_failed"

    # Roll back to revision 1 by name, without waiting; then follow it.
    queued = cli("deploy", "up", "--from-revision", "1", "--no-wait").stdout.strip()
    assert queued.startswith("revision 3 of up queued from revision 1; follow it with")
    deadline = time.monotonic() + 60
    while cli.json("deployment", "show", "up", "3")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, "revision 3 did not finish"
        time.sleep(0.3)
    final = cli.json("deployment", "show", "up", "3")
    assert (final["status"], final["from_revision"]) == ("succeeded", 1)
    assert [a["version"] for a in final["apps"]] == ["1.0.0"]
    assert cli.json("env", "show", "up")["status"] == "ready"


def test_events_follow_and_a_cancelled_deploy(cli, tmp_path):
    cli("package", "publish", str(write_package(tmp_path, "org.test.slow", "1.0.0",
                                                services={"web": slow_service()})))  # fmt: skip
    cli("env", "create", "slow")
    cli("app", "add", "slow", "web", "--package", "org.test.slow")
    follower = subprocess.Popen(
        [BIN / "catalogctl", "events", "slow", "--follow", "-o", "json"],
        env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    followed: list[str] = []
    reader = threading.Thread(target=lambda: followed.extend(follower.stdout), daemon=True)
    reader.start()
    deploying = subprocess.Popen(
        [BIN / "catalogctl", "deploy", "slow"],
        env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while [d["status"] for d in cli.json("deployment", "list", "slow")] != ["running"]:
            assert time.monotonic() < deadline, "revision 1 did not start"
            time.sleep(0.3)
        assert cli("deployment", "cancel", "slow", "1", code=1).stderr.endswith("pass --yes\n")
        cancelled = cli("deployment", "cancel", "slow", "1", "--yes").stdout
        assert cancelled.startswith("cancelling revision 1 of slow")
        out, err = deploying.communicate(timeout=60)
        assert deploying.returncode == 1, (out, err)
        assert err.strip() == "Error: revision 1 was cancelled"
        assert "revision 1 started (attempt 1)" in out
    finally:
        if deploying.poll() is None:
            deploying.kill()
            deploying.communicate()
        # The follower streams on its own: let it see the cancel before Ctrl-C (bounded).
        deadline = time.monotonic() + 30
        while not any("cancelled: cancelled by request" in line for line in list(followed)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        follower.send_signal(signal.SIGINT)  # Ctrl-C ends a follow quietly
    follower.wait(timeout=30)
    reader.join(timeout=30)
    assert follower.returncode == 0, follower.stderr.read()
    messages = [json.loads(line)["message"] for line in followed]
    assert messages[0] == "revision 1 queued"
    assert "revision 1 cancelled: cancelled by request" in messages


def test_an_environment_made_from_a_template_deploys(cli, tmp_path):
    cli("package", "publish", str(write_package(tmp_path, "org.test.echo", "1.0.0")))
    cli("env", "create", "dev", "--set", "tier=1")
    cli("app", "add", "dev", "web", "--package", "org.test.echo", "-p", "who=alice")
    spec = tmp_path / "spec.yaml"
    spec.write_text("apps:\n  - {name: web, package: org.test.echo, version: ^1.0.0}\n")

    made = cli("template", "create", "echo", "--from-env", "dev", "--description", "one echo")
    assert made.stdout.strip() == "created template echo (1 app)"
    assert cli("template", "create", "bare", "-f", str(spec)).returncode == 0
    listed = cli("template", "list").stdout.splitlines()
    assert [line.split()[:3] for line in listed[1:]] == [
        ["bare", "web", "-"],
        ["echo", "web", "dev"],
    ]
    shown = cli.json("template", "show", "echo")
    assert shown["settings"] == {"tier": 1}
    assert shown["apps"][0]["parameters"] == {"who": "alice"}
    refused = cli("template", "create", "x", code=2)
    assert "give either --from-env ENV or --file FILE" in refused.stderr

    params = tmp_path / "web.yaml"
    params.write_text("who: carol\n")
    from_file = cli("template", "use", "echo", "staging", "--params-file", f"web={params}")
    assert from_file.returncode == 0
    assert cli.json("app", "show", "staging", "web")["parameters"] == {"who": "carol"}
    cli("env", "delete", "staging", "--yes")
    used = cli("template", "use", "echo", "prod", "-p", "web.who=bob", "--set", "tier=2")
    assert used.stdout.strip() == (
        "created environment prod from template echo (1 app); "
        "deploy it with `catalogctl deploy prod`"
    )
    assert cli.json("env", "show", "prod")["settings"] == {"tier": 2}
    cli("deploy", "prod")
    assert fetch(cli("app", "endpoint", "prod", "web").stdout.strip(), expect="bob") == "bob"

    assert cli("template", "delete", "echo", "--yes").stdout.strip() == "deleted template echo"
    assert cli.json("env", "show", "prod")["status"] == "ready"
    cli("env", "delete", "prod", "--yes")
