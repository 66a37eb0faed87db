"""CATALOG_LOG_FORMAT=json: every line the API, a worker and the tracker write is one JSON
object; a deploy's worker lines carry the request id of the API request that queued it and
the environment's id; no token, in the header or refused in the query string, and no
secret parameter is ever written."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import remove_labelled
from tests.integration.conftest import package_bytes
from tests.integration.served import serve, service_env
from tests.integration.test_tracker import SLEEPER, TrackerProcess

__all__ = ["serve", "service_env"]

SECRET_VALUE = "never-in-a-log-0451"
PARAMETERS = {"type": "object", "properties": {"password": {"type": "string", "x-secret": True}}}


def json_lines(path: Path) -> list[dict]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert lines, f"{path.name} is empty"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line in {path.name}: {line!r}") from None
    return parsed


def call(port: int, method: str, path: str, headers: dict, body: object = None, raw=None):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        sent = {**headers, "Content-Type": "application/gzip" if raw else "application/json"}
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), json.loads(data) if data else None
    finally:
        connection.close()


def test_json_lines_carry_the_request_id_into_the_deploy_and_no_secret(
    serve, make_caller, start_worker, worker_env, tmp_path, docker_client
):
    port = serve(1, LOG_FORMAT="json")
    worker = start_worker(CATALOG_LOG_FORMAT="json")
    tracker_env = {**worker_env, "CATALOG_LOG_FORMAT": "json"}
    tracker = TrackerProcess(tracker_env, tmp_path / "tracker.log").wait_following()
    publisher = make_caller("acme", "publisher")
    auth = publisher.headers
    package = package_bytes(
        "org.test.logged", "1.0.0", parameters=PARAMETERS,
        services={"main": {**SLEEPER, "environment": {"PASSWORD": "{{ params.password }}"}}},
    )  # fmt: skip
    assert call(port, "POST", "/v1/packages", auth, raw=package)[0] == 201
    env_id = call(port, "POST", "/v1/environments", auth, {"name": "logged"})[2]["id"]
    app = {"name": "a", "package": "org.test.logged", "parameters": {"password": SECRET_VALUE}}
    assert call(port, "POST", "/v1/environments/logged/apps", auth, app)[0] == 201
    status, headers, _ = call(port, "POST", "/v1/environments/logged/deployments",
                              {**auth, "X-Request-Id": "deploy-req-42"}, {})  # fmt: skip
    assert status == 202 and headers["X-Request-Id"] == "deploy-req-42"
    deadline = time.monotonic() + 60
    while call(port, "GET", "/v1/environments/logged/deployments/1", auth)[2]["status"] not in (
        "succeeded", "failed", "rolled_back",
    ):  # fmt: skip
        assert time.monotonic() < deadline, "the deployment did not finish"
        time.sleep(0.3)
    # A token refused in the query string, and an id of ours for a request without one.
    assert call(port, "GET", f"/v1/packages?token={publisher.secret}", {})[0] == 401
    assert len(call(port, "GET", "/v1/health", {})[1]["X-Request-Id"]) == 32
    worker.stop()
    tracker.stop()
    remove_labelled(docker_client, f"io.catalog.env={env_id}")

    api_lines = json_lines(next(tmp_path.glob("api-*.log")))
    access = [line for line in api_lines if line.get("message") == "request"]
    deploy_access = next(a for a in access if a["path"] == "/v1/environments/logged/deployments")
    assert (deploy_access["status"], deploy_access["request_id"]) == (202, "deploy-req-42")
    assert any(a["path"] == "/v1/packages?token=***" for a in access)
    assert {line["process"] for line in api_lines} == {"api"}

    worker_lines = json_lines(worker.log_path)
    of_the_deploy = [line for line in worker_lines if line.get("request_id") == "deploy-req-42"]
    assert of_the_deploy, "no worker line carries the request id"
    assert {(line["environment_id"], line["revision"]) for line in of_the_deploy} == {(env_id, 1)}
    assert {line["process"] for line in worker_lines} == {"worker"}
    tracker_lines = json_lines(tmp_path / "tracker.log")
    assert {line["process"] for line in tracker_lines} == {"tracker"}
    assert any("following engine events" in line["message"] for line in tracker_lines)

    everything = "\n".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert publisher.secret not in everything and SECRET_VALUE not in everything
