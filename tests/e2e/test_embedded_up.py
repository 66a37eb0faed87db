"""The embedded profile: `make run`'s script (`catalogctl up`) on SQLite and the broker that
needs no server, in a temporary CATALOG_HOME: publish, deploy, curl, Ctrl-C, start again."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e.conftest import BIN, HOST_PORT_RANGE, Cli, fetch, free_port, remove_engine_objects
from tests.e2e.upstack import UpProcess, running


@pytest.fixture
def embedded_env(tmp_path, docker_client):
    """No CATALOG_* setting but a home of its own: everything else is the embedded default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CATALOG_", "CATALOGCTL_"))}
    env.update(
        CATALOG_HOME=str(tmp_path / "var"),
        CATALOGCTL_CONFIG=str(tmp_path / "catalogctl.yaml"),
        CATALOG_HOST_PORT_RANGE=HOST_PORT_RANGE,
        CATALOG_MIN_RUNNING_SECONDS="0.5",
    )
    yield env
    database = tmp_path / "var" / "catalog.db"
    if database.exists():
        with sqlite3.connect(database) as conn:
            env_ids = [row[0] for row in conn.execute("SELECT id FROM environments")]
        for env_id in env_ids:
            remove_engine_objects(docker_client, env_id)


def test_make_run_starts_everything_deploys_and_ctrl_c_stops_it(embedded_env, tmp_path):
    port = free_port()
    env = {**embedded_env, "CATALOG_PORT": str(port)}
    up = UpProcess(["bash", ROOT / "scripts" / "run.sh"], env, ROOT).ready()
    try:
        url = f"http://127.0.0.1:{port}"
        assert f"The catalog runs at {url}/v1" in up.output
        assert "published org.example.hello-web 1.0.0" in up.output
        children = up.children
        assert set(children) == {"api", "worker", "tracker"}
        token_file = tmp_path / "var" / "admin.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        key_file = tmp_path / "var" / "secret.key"  # encrypts secret parameters at rest
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert f"Created the key of secret parameters: {key_file}" in up.output
        key = key_file.read_text()
        profiles = yaml.safe_load((tmp_path / "catalogctl.yaml").read_text())
        assert profiles == {"current": "local", "profiles": {"local": {"url": url, "token": token}}}

        cli = Cli(embedded_env, tmp_path)  # nothing but the profile `up` saved
        listed = [p["name"] for p in cli.json("package", "list")]
        assert listed == ["org.example.hello-web", "org.example.kvfront", "org.example.kvstore"]
        cli("env", "create", "smoke")
        cli("app", "add", "smoke", "web", "--package", "org.example.hello-web",
            "-p", "greeting=embedded")  # fmt: skip
        assert (
            cli("deploy", "smoke")
            .stdout.splitlines()[-1]
            .startswith("revision 1 of smoke is deployed")
        )
        endpoint = cli("app", "endpoint", "smoke", "web").stdout.strip()
        assert "<h1>embedded</h1>" in fetch(endpoint)
        cli("env", "delete", "smoke", "--yes")
    finally:
        code = up.interrupt()
    assert code == 0, up.output
    assert "stopping: tracker, worker, api" in up.output
    assert not [name for name, pid in children.items() if running(pid)]

    # Started again: the same data, the same token, nothing published twice.
    again = UpProcess(
        [BIN / "catalogctl", "up", "--port", str(port), "--examples", str(ROOT / "examples")],
        embedded_env,
        tmp_path,
    ).ready()
    try:
        assert "org.example.hello-web 1.0.0 is published already (skipped)" in again.output
        assert token_file.read_text().strip() == token
        assert key_file.read_text() == key and "Created the key" not in again.output
        history = Cli(embedded_env, tmp_path).json("package", "list")
        assert len(history) == 3
    finally:
        assert again.interrupt() == 0, again.output
    assert not [pid for pid in again.children.values() if running(pid)]


def test_up_refuses_a_port_in_use_in_one_line(embedded_env, tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        up = UpProcess([BIN / "catalogctl", "up", "--port", str(port)], embedded_env, tmp_path)
        code = up.wait()
    assert code == 1
    assert up.output.strip() == (
        f"Error: something already listens on 127.0.0.1:{port}; stop it, or start with --port"
    )
    assert not (tmp_path / "var").exists()  # a refused start writes nothing: no home, no key
