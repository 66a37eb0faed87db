"""Deployments on the real engine and broker: bindings, selective replacement, rollback."""

from __future__ import annotations

import json
import urllib.request

from tests.conftest import EXAMPLES


def fetch(host: str, port: int, path: str = "/") -> bytes:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
        return response.read()


def test_two_bound_apps_deploy_and_the_front_serves_the_store_data(deployer, start_worker):
    start_worker()
    for name in ("kv-store", "kv-front"):
        deployer.publish(EXAMPLES / name)
    deployer.create_env("shop")
    deployer.add_app("shop", "store", "org.example.kvstore", parameters={"message": "from store"})
    deployer.add_app("shop", "front", "org.example.kvfront", bindings={"store": "store"})

    deployment = deployer.wait("shop", deployer.deploy("shop"))

    assert deployment["status"] == "succeeded", deployment["events"]
    environment = deployer.environment("shop")
    assert environment["status"] == "ready"
    assert environment["current_revision"] == 1
    body = json.loads(fetch(*deployer.endpoint("shop", "front")))
    assert body == {"message": "from store", "app": "store"}
