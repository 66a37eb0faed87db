"""Per-tenant quotas on real PostgreSQL (and a real worker): environments and published ports.

Refusals name the setting; other tenants are unaffected; concurrent requests cannot overshoot.
"""

from __future__ import annotations

import threading

import pytest

from catalog.models import Environment
from tests.conftest import TEST_IMAGE
from tests.integration.conftest import package_bytes
from tests.integration.stack import Deployer

TWO_PORTS = {
    "image": TEST_IMAGE,
    "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
    "ports": [{"container": 8080, "publish": True}, {"container": 8081, "publish": True}],
    "resources": {"memory": "32m", "cpus": 0.25, "pids": 64},
}


def _env(client, caller, name: str):
    return client.post("/v1/environments", json={"name": name}, headers=caller.headers)


@pytest.mark.parametrize("app_config", [{"TENANT_MAX_ENVIRONMENTS": 2}])
def test_environments_per_tenant_are_bounded_for_that_tenant_only(client, make_caller):
    acme, globex = make_caller("acme", "deployer"), make_caller("globex", "deployer")
    assert [_env(client, acme, n).status_code for n in ("a", "b")] == [201, 201]
    refused = _env(client, acme, "c")
    assert refused.status_code == 409
    assert "CATALOG_TENANT_MAX_ENVIRONMENTS" in refused.json["detail"]
    listed = client.get("/v1/environments", headers=acme.headers).json["items"]
    assert [e["name"] for e in listed] == ["a", "b"]
    assert _env(client, globex, "c").status_code == 201


@pytest.mark.parametrize("app_config", [{"TENANT_MAX_ENVIRONMENTS": 3}])
def test_concurrent_creates_never_overshoot_the_quota(app, make_caller):
    acme = make_caller("acme", "deployer")
    statuses: list[int] = []
    start = threading.Barrier(8)

    def create(i: int) -> None:
        start.wait()
        statuses.append(_env(app.test_client(), acme, f"env-{i}").status_code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] * 3 + [409] * 5
    with app.extensions["catalog"]["sessionmaker"]() as session:
        assert session.query(Environment).count() == 3


def _two_port_env(deployer: Deployer, env: str, package: str = "org.acme.ports") -> None:
    deployer.create_env(env)
    deployer.add_app(env, "web", package)


@pytest.mark.parametrize("app_config", [{"TENANT_MAX_PUBLISHED_PORTS": 3}])
def test_published_ports_per_tenant_are_refused_at_deploy(
    deployer, start_worker, client, make_caller
):
    start_worker(CATALOG_TENANT_MAX_PUBLISHED_PORTS="3")
    deployer.publish(package_bytes("org.acme.ports", "1.0.0", services={"web": TWO_PORTS}))
    _two_port_env(deployer, "one")
    assert deployer.wait("one", deployer.deploy("one"))["status"] == "succeeded"

    _two_port_env(deployer, "two")
    refused = deployer.call("POST", "/environments/two/deployments", json={}, expect=409)
    assert "CATALOG_TENANT_MAX_PUBLISHED_PORTS" in refused["detail"]
    assert deployer.environment("two")["status"] == "new"  # nothing was queued

    # Another tenant's ports are its own.
    globex = Deployer(client, make_caller("globex", "publisher").headers)
    globex.publish(package_bytes("org.globex.ports", "1.0.0", services={"web": TWO_PORTS}))
    _two_port_env(globex, "three", "org.globex.ports")
    assert globex.wait("three", globex.deploy("three"))["status"] == "succeeded"
    deployer.env_ids.extend(globex.env_ids)  # cleaned up with the others


@pytest.mark.parametrize("app_config", [{"TENANT_MAX_PUBLISHED_PORTS": 3}])
def test_the_worker_rechecks_the_quota_as_it_allocates(deployer, start_worker):
    deployer.publish(package_bytes("org.acme.ports", "1.0.0", services={"web": TWO_PORTS}))
    _two_port_env(deployer, "one")
    _two_port_env(deployer, "two")
    # Both pass the API's check: neither holds a port yet.
    first, second = deployer.deploy("one"), deployer.deploy("two")
    start_worker(CATALOG_TENANT_MAX_PUBLISHED_PORTS="3")
    assert deployer.wait("one", first)["status"] == "succeeded"
    failed = deployer.wait("two", second)
    assert failed["status"] == "failed"
    assert "CATALOG_TENANT_MAX_PUBLISHED_PORTS" in failed["error"]
