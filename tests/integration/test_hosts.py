"""Docker hosts: registered by admins, environments placed on them, their tasks routed to each
host's workers, their endpoints and logs from that host, and each tracker minding only its own
host's environments.

The tests have one engine; two "hosts" here are two names for it, each with workers and a
tracker of its own, which is all the catalog can tell of a host.
"""

from __future__ import annotations

import socket
import subprocess
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from catalog import settings_of
from catalog.models import AuditEvent, Deployment, Host
from catalog.queue import ACTION_TASK, DEPLOY_TASK, TEARDOWN_TASK, host_queue
from tests.conftest import TASK_QUEUE
from tests.integration import test_tracker as tracker_tests
from tests.integration.conftest import package_bytes
from tests.integration.stack import BIN
from tests.integration.test_tracker import SLEEPER, running_ids, throughout
from tests.polling import eventually
from workers.resync import republish_stale

EAST = host_queue(TASK_QUEUE, "east")
start_tracker = tracker_tests.start_tracker  # a fixture: the tracker as a real process


@pytest.fixture
def admin(make_caller):
    return make_caller("root", "admin")


def call(client, caller, method, path, body=None):
    headers = caller.headers if caller is not None else {}
    return client.open(f"/v1{path}", method=method, json=body, headers=headers)


def add_host(client, admin, name, **body):
    response = call(client, admin, "POST", "/hosts", {"name": name, "public_host": name, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def audit_count(app) -> int:
    """Changes on the audit trail (refused writes are events of their own)."""
    with app.extensions["catalog"]["sessionmaker"]() as session:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.result == "ok")
        return session.scalar(query)


# -- registering -------------------------------------------------------------------------------


def test_an_admin_adds_lists_changes_and_removes_hosts(client, app, admin, make_caller):
    deployer = make_caller("acme", "deployer")
    created = add_host(client, admin, "east", public_host="east.example.com")
    assert {k: created[k] for k in ("name", "public_host", "docker_url", "enabled")} == {
        "name": "east", "public_host": "east.example.com", "docker_url": "", "enabled": True,
    }  # fmt: skip
    assert (
        call(client, admin, "POST", "/hosts", {"name": "east", "public_host": "x"}).status_code
        == 409
    )
    env = call(client, deployer, "POST", "/environments", {"name": "shop"}).get_json()
    assert env["host"] == "east"

    listed = call(client, admin, "GET", "/hosts").get_json()["items"]
    assert [(h["name"], h["environments"]) for h in listed] == [("east", 1)]
    changed = call(
        client, admin, "PATCH", "/hosts/east", {"enabled": False, "docker_url": "ssh://catalog@e"}
    )
    assert changed.status_code == 200
    assert (changed.get_json()["enabled"], changed.get_json()["docker_url"]) == (
        False,
        "ssh://catalog@e",
    )

    refused = call(client, admin, "DELETE", "/hosts/east")
    assert refused.status_code == 409
    assert "runs 1 environment(s)" in refused.get_json()["detail"]
    assert call(client, admin, "GET", "/hosts/nowhere").status_code == 404
    add_host(client, admin, "west")
    assert call(client, admin, "DELETE", "/hosts/west").status_code == 204
    assert call(client, admin, "GET", "/hosts/west").status_code == 404
    with app.extensions["catalog"]["sessionmaker"]() as session:
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object_type == "host")
            .order_by(AuditEvent.id)
        ).all()
    assert actions == ["host.create", "host.update", "host.create", "host.delete"]


@pytest.mark.parametrize(
    ("role", "status"), [("publisher", 403), ("deployer", 403), ("viewer", 403), (None, 401)]
)
def test_only_an_admin_sees_or_touches_hosts(client, app, admin, make_caller, role, status):
    add_host(client, admin, "east")
    caller = make_caller("acme", role) if role else None
    before = audit_count(app)

    for method, path, body in (
        ("POST", "/hosts", {"name": "west", "public_host": "w"}),
        ("GET", "/hosts", None),
        ("GET", "/hosts/east", None),
        ("PATCH", "/hosts/east", {"enabled": False}),
        ("DELETE", "/hosts/east", None),
    ):
        assert call(client, caller, method, path, body).status_code == status, (method, path)
    assert audit_count(app) == before
    assert call(client, admin, "GET", "/hosts/east").get_json()["enabled"] is True


# -- placement ---------------------------------------------------------------------------------


def test_without_hosts_environments_run_on_the_default_engine(client, make_caller):
    deployer = make_caller("acme", "deployer")

    env = call(client, deployer, "POST", "/environments", {"name": "shop"}).get_json()

    assert env["host"] is None


def test_new_environments_go_to_the_named_or_the_least_busy_enabled_host(
    client, admin, make_caller
):
    deployer = make_caller("acme", "deployer")
    for name in ("west", "east", "north"):
        add_host(client, admin, name)
    call(client, admin, "PATCH", "/hosts/north", {"enabled": False})

    def create(name, **body):
        response = call(client, deployer, "POST", "/environments", {"name": name, **body})
        return response.status_code, (response.get_json() or {}).get("host")

    assert create("a") == (201, "east")  # both empty: by name
    assert create("b") == (201, "west")
    assert create("c", host="east") == (201, "east")
    assert create("d") == (201, "west")  # east has 2, west 1
    status, _ = create("e", host="north")
    assert status == 400
    gone = call(client, deployer, "POST", "/environments", {"name": "f", "host": "south"})
    assert gone.get_json()["errors"] == [{"path": "host", "message": "no host 'south'"}]
    for name in ("east", "west"):
        call(client, admin, "PATCH", f"/hosts/{name}", {"enabled": False})
    full = call(client, deployer, "POST", "/environments", {"name": "g"})
    assert full.status_code == 409
    assert "every registered host is disabled" in full.get_json()["detail"]


# -- routing -----------------------------------------------------------------------------------


def test_an_environments_tasks_go_to_its_hosts_queue_only(
    client, admin, make_caller, published_tasks
):
    publisher = make_caller("acme", "publisher")
    add_host(client, admin, "east")
    published_tasks(EAST)
    gzip = {**publisher.headers, "Content-Type": "application/gzip"}
    assert (
        client.post(
            "/v1/packages", data=package_bytes("org.test.app", "1.0.0"), headers=gzip
        ).status_code
        == 201
    )
    env = call(client, publisher, "POST", "/environments", {"name": "shop"}).get_json()
    call(
        client,
        publisher,
        "POST",
        "/environments/shop/apps",
        {"name": "web", "package": "org.test.app"},
    )

    assert call(client, publisher, "POST", "/environments/shop/deployments", {}).status_code == 202
    assert call(client, publisher, "DELETE", "/environments/shop").status_code == 202

    assert published_tasks(EAST) == [(DEPLOY_TASK, [env["id"], 1]), (TEARDOWN_TASK, [env["id"]])]
    assert published_tasks() == []


@pytest.mark.parametrize(
    "url", ["tcp://e:2376", "tcp://127.0.0.1:2375", "http://e:2375", "e:2376", "tcp://"]
)
def test_an_engine_address_without_tls_or_scheme_is_refused(client, admin, url):
    refused = call(client, admin, "POST", "/hosts", {"name": "east", "public_host": "e",
                                                      "docker_url": url})  # fmt: skip
    assert refused.status_code == 400, refused.get_json()
    assert [e["path"] for e in refused.get_json()["errors"]] == ["docker_url"]
    add_host(client, admin, "east", docker_url="ssh://catalog@e")
    patched = call(client, admin, "PATCH", "/hosts/east", {"docker_url": url})
    assert patched.status_code == 400
    assert call(client, admin, "GET", "/hosts/east").get_json()["docker_url"] == "ssh://catalog@e"


def test_plain_tcp_says_why_and_tcp_with_the_apis_tls_files_is_accepted(
    client, app, admin, tmp_path
):
    body = {"name": "east", "public_host": "e", "docker_url": "tcp://e:2376"}
    refused = call(client, admin, "POST", "/hosts", body).get_json()
    assert "gives root on that host" in refused["errors"][0]["message"]
    assert "CATALOG_DOCKER_TLS_DIR" in refused["errors"][0]["message"]
    tls = tmp_path / "tls"
    tls.mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tls / name).write_text("-----BEGIN CERTIFICATE-----\n")
    app.extensions["catalog"]["settings"] = settings_of(app).replace(docker_tls_dir=str(tls))
    assert call(client, admin, "POST", "/hosts", body).status_code == 201


def test_a_hosts_worker_deploys_its_environments_and_they_show_its_address(
    client, app, admin, deployer, start_worker, docker_client
):
    add_host(client, admin, "east", public_host="localhost")
    start_worker()  # the default engine's: it must not take east's work
    deployer.publish(package_bytes("org.test.web", "1.0.0"))
    env = deployer.call("POST", "/environments", json={"name": "shop", "host": "east"})
    deployer.env_ids.append(env["id"])
    deployer.add_app("shop", "web", "org.test.web")
    revision = deployer.deploy("shop")
    throughout(
        lambda: deployer.deployment("shop", revision)["status"] == "queued", 3,
        "east's deployment waits for east's worker",
    )  # fmt: skip

    start_worker(CATALOG_HOST_NAME="east")

    assert deployer.wait("shop", revision)["status"] == "succeeded"
    (endpoint,) = deployer.environment("shop")["apps"][0]["endpoints"]
    assert endpoint["host"] == "localhost"
    socket.create_connection((endpoint["host"], endpoint["port"]), timeout=5).close()
    # The API reads logs from a host's engine only once it knows the engine's address.
    away = client.get("/v1/environments/shop/apps/web/logs", headers=deployer.headers)
    assert away.status_code == 503
    assert "--docker-url" in away.get_json()["detail"]
    call(client, admin, "PATCH", "/hosts/east", {"docker_url": "unix:///var/run/docker.sock"})
    assert (
        client.get("/v1/environments/shop/apps/web/logs", headers=deployer.headers).status_code
        == 200
    )
    # A host registered on plain tcp:// before the rule: the API will not call it.
    with app.extensions["catalog"]["sessionmaker"]() as session:
        session.execute(
            update(Host).where(Host.name == "east").values(docker_url="tcp://127.0.0.1:2375")
        )
        session.commit()
    legacy = client.get("/v1/environments/shop/apps/web/logs", headers=deployer.headers)
    assert legacy.status_code == 503
    assert "plain tcp://" in legacy.get_json()["detail"]


def test_a_tracker_minds_only_its_own_hosts_environments(
    client, admin, deployer, start_worker, start_tracker, docker_client
):
    start_worker()
    deployer.publish(package_bytes("org.test.steady", "1.0.0", services={"main": SLEEPER}))
    ids = {}
    # `home` is made before any host is registered: it stays on the default engine.
    for name, host in (("home", None), ("away", "east")):
        if host is not None:
            add_host(client, admin, host)
            start_worker(CATALOG_HOST_NAME=host)
        env = deployer.call("POST", "/environments", json={"name": name})
        assert env["host"] == host
        deployer.env_ids.append(env["id"])
        deployer.add_app(name, "steady", "org.test.steady")
        assert deployer.wait(name, deployer.deploy(name))["status"] == "succeeded"
        ids[name] = running_ids(docker_client, env["id"])[("steady", "main")]
    east_tracker = start_tracker(HOST_NAME="east")

    def kill(name: str) -> str:
        container = docker_client.containers.get(ids[name])
        started = container.attrs["State"]["StartedAt"]
        container.kill()
        eventually(lambda: container.reload() or container.status == "exited", 10, f"{name} dead")
        return started

    def restarted(name: str, started: str) -> bool:
        state = docker_client.containers.get(ids[name]).attrs["State"]
        return state["Running"] and state["StartedAt"] != started

    def left_alone(name: str) -> bool:
        return (
            docker_client.containers.get(ids[name]).status == "exited"
            and deployer.environment(name)["apps"][0]["status"] == "running"
        )

    # East's tracker restarts east's container; the default engine's environment is not its.
    home_started, away_started = kill("home"), kill("away")
    eventually(lambda: restarted("away", away_started), 15, "away restarted by east's tracker")
    throughout(lambda: left_alone("home"), 3, "home left alone by east's tracker")

    # And the default engine's tracker the other way round.
    east_tracker.stop()
    start_tracker()
    eventually(lambda: restarted("home", home_started), 15, "home restarted by its tracker")
    kill("away")
    throughout(lambda: left_alone("away"), 3, "away left alone by the default tracker")


def test_a_tracker_for_an_unregistered_host_refuses_to_start(worker_env):
    done = subprocess.run(
        [BIN / "catalogctl", "tracker", "--host-name", "nowhere"],
        env=worker_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert done.returncode != 0
    assert "no registered host 'nowhere'" in done.stderr


def test_tasks_reach_their_hosts_workers_whoever_sends_them(
    app, client, admin, deployer, start_worker, published_tasks
):
    add_host(client, admin, "east")
    deployer.publish(package_bytes("org.test.web", "1.0.0"))
    env = deployer.call("POST", "/environments", json={"name": "shop"})
    deployer.env_ids.append(env["id"])
    deployer.add_app("shop", "web", "org.test.web")
    east = start_worker(CATALOG_HOST_NAME="east")
    assert deployer.wait("shop", deployer.deploy("shop"))["status"] == "succeeded"
    east.terminate()
    east.stop()
    published_tasks(EAST), published_tasks()

    # An action, and a deployment the resync sends again, go to east's queue.
    task = deployer.call("POST", "/environments/shop/apps/web/actions/restart", json={})
    assert published_tasks(EAST) == [(ACTION_TASK, [task["id"]])]
    revision = deployer.deploy("shop")
    assert published_tasks(EAST) == [(DEPLOY_TASK, [env["id"], revision])]
    with app.extensions["catalog"]["sessionmaker"]() as session:
        session.execute(update(Deployment).values(published_at=None))
        session.commit()
    publisher = app.extensions["catalog"]["publisher"]
    worker = SimpleNamespace(
        sessions=app.extensions["catalog"]["sessionmaker"], settings=settings_of(app)
    )
    assert republish_stale(worker, publisher.celery) == 1
    assert published_tasks(EAST) == [(DEPLOY_TASK, [env["id"], revision])]
    assert published_tasks() == []

    # A deploy sent to the default engine's queue (by an API that knows no hosts): the
    # default engine's worker passes it on to east instead of running it.
    start_worker()
    assert publisher.send(DEPLOY_TASK, env["id"], revision)
    eventually(
        lambda: published_tasks(EAST) == [(DEPLOY_TASK, [env["id"], revision])], 20,
        "the default engine's worker passes east's deploy on",
    )  # fmt: skip
    assert deployer.deployment("shop", revision)["status"] == "queued"


@pytest.mark.parametrize(
    "app_config", [{"LOG_BUDGET_BYTES": 25 * 1024**2, "LOG_SHARE_BYTES": 10 * 1024**2}]
)
def test_each_hosts_log_budget_counts_its_own_containers(client, admin, deployer, start_worker):
    start_worker()
    deployer.publish(package_bytes("org.test.pair", "1.0.0", services={"a": SLEEPER, "b": SLEEPER}))
    deployer.publish(package_bytes("org.test.one", "1.0.0", services={"a": SLEEPER}))
    for name, package in (("first", "org.test.pair"), ("second", "org.test.one")):
        env = deployer.create_env(name)
        deployer.add_app(name, "app", package)
    # 20 MiB of the default engine's 25 are taken: a 10 MiB container does not fit there.
    assert deployer.wait("first", deployer.deploy("first"))["status"] == "succeeded"
    deployer.call("POST", "/environments/second/deployments", expect=507, json={})

    add_host(client, admin, "east")
    env = deployer.call("POST", "/environments", json={"name": "third"})
    deployer.env_ids.append(env["id"])
    deployer.add_app("third", "app", "org.test.one")

    # East's budget is its own: nothing runs there yet.
    assert deployer.call("POST", "/environments/third/deployments", expect=202, json={})
