"""The CLI against a running API: bootstrap, publish, and failures as one clear line."""

from __future__ import annotations

import hashlib

import requests

from tests.conftest import EXAMPLES
from tests.e2e.conftest import catalogctl, free_port


def test_bootstrap_then_publish_an_example(live_server, service_env):
    bootstrap = catalogctl("admin", "bootstrap", env=service_env)
    assert bootstrap.returncode == 0, bootstrap.stderr
    token = bootstrap.stdout.strip()
    assert token.startswith("cat_")
    env = {**service_env, "CATALOG_URL": live_server, "CATALOG_TOKEN": token}

    published = catalogctl("package", "publish", str(EXAMPLES / "hello-web"), env=env)
    assert published.returncode == 0, published.stderr
    assert "published org.example.hello-web 1.0.0 (sha256:" in published.stdout
    digest = published.stdout.strip().rsplit("(", 1)[1].rstrip(")")

    headers = {"Authorization": f"Bearer {token}"}
    archive = requests.get(
        f"{live_server}/v1/packages/org.example.hello-web/versions/1.0.0/archive",
        headers=headers,
        timeout=10,
    )
    assert archive.status_code == 200
    assert f"sha256:{hashlib.sha256(archive.content).hexdigest()}" == digest

    again = catalogctl("package", "publish", str(EXAMPLES / "hello-web"), env=env)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        "Error: 409 Conflict: org.example.hello-web 1.0.0 is published already"
    ]


def test_publish_without_a_token_says_401_in_one_line(live_server, service_env):
    env = {**service_env, "CATALOG_URL": live_server}
    result = catalogctl("package", "publish", str(EXAMPLES / "hello-web"), env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: 401 Unauthorized")
    assert "Traceback" not in result.stderr


def test_connection_refused_names_the_url_and_how_to_start(service_env):
    url = f"http://127.0.0.1:{free_port()}"
    env = {**service_env, "CATALOG_URL": url, "CATALOG_TOKEN": "cat_x"}
    result = catalogctl("package", "publish", str(EXAMPLES / "hello-web"), env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert url in lines[0]
    assert "make run" in lines[0]


def test_serve_refuses_a_port_another_server_listens_on(live_server, service_env):
    # Workers listen with SO_REUSEPORT; without the check a second server would share the port.
    port = live_server.rsplit(":", 1)[1]
    result = catalogctl("serve", "--port", port, "--no-migrate", env=service_env)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert requests.get(f"{live_server}/v1/health", timeout=5).status_code == 200
