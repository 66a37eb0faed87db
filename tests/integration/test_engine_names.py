"""Engine names on the real engine (hole 15): app `a` with service `b-c` and volume `b-data`
and app `a-b` with service `c` and volume `data` share neither a volume nor a DNS name, and
a volume of the old, ambiguous name keeps serving the app that made it."""

from __future__ import annotations

from tests.conftest import TEST_IMAGE
from tests.integration.conftest import package_bytes
from tests.integration.test_deploy import (
    ENV_LABEL,
    RESOURCES,
    container_of,
    deploy_ok,
    exec_get,
)


def serving(service: str, volume: str, who: str) -> bytes:
    """A package whose `service` keeps `who` in its volume and serves it on port 9000."""
    script = (
        "mkdir -p /www && cat /data/who > /www/index.html 2>/dev/null"
        " || { echo -n $WHO > /data/who && cp /data/who /www/index.html; }"
        " && exec httpd -f -p 9000 -h /www"
    )
    return package_bytes(
        f"org.test.{who}",
        "1.0.0",
        services={
            service: {
                "image": TEST_IMAGE,
                "command": ["sh", "-c", script],
                "environment": {"WHO": who},
                "volumes": [{"name": volume, "path": "/data"}],
                "ports": [{"container": 9000}],
                "healthcheck": {
                    "http": {"port": 9000, "path": "/"},
                    "interval": "200ms",
                    "timeout": "500ms",
                    "retries": 10,
                },
                "resources": RESOURCES,
            }
        },
    )


def two_apps(deployer, env: str) -> str:
    deployer.publish(serving("b-c", "b-data", "one"))
    deployer.publish(serving("c", "data", "two"))
    env_id = deployer.create_env(env)["id"]
    deployer.add_app(env, "a", "org.test.one")
    deployer.add_app(env, "a-b", "org.test.two")
    return env_id


def mounted(container) -> list[str]:
    container.reload()
    return [m["Name"] for m in container.attrs["Mounts"]]


def test_apps_whose_names_used_to_meet_get_their_own_volume_and_name(
    deployer, start_worker, docker_client
):
    start_worker()
    env_id = two_apps(deployer, "names")

    deploy_ok(deployer, "names")

    one = container_of(docker_client, env_id, "a", "b-c")
    two = container_of(docker_client, env_id, "a-b", "c")
    assert mounted(one) == [f"cat-{env_id}_a_b-data"]
    assert mounted(two) == [f"cat-{env_id}_a-b_data"]
    volumes = docker_client.volumes.list(filters={"label": f"{ENV_LABEL}={env_id}"})
    assert sorted(v.attrs["Labels"]["io.catalog.volume"] for v in volumes) == ["b-data", "data"]
    assert exec_get(one, "http://c.a-b:9000/") == (True, "two")
    assert exec_get(two, "http://b-c.a:9000/") == (True, "one")


def test_a_volume_of_the_old_name_keeps_serving_the_app_that_made_it(
    deployer, start_worker, docker_client
):
    start_worker()
    env_id = two_apps(deployer, "legacy")
    # What an older worker left: `cat-<env>-a-b-data`, made for app `a`, holding its data.
    legacy = f"cat-{env_id}-a-b-data"
    docker_client.volumes.create(
        legacy, labels={ENV_LABEL: env_id, "io.catalog.app": "a", "io.catalog.tenant": "acme"}
    )
    docker_client.containers.run(
        TEST_IMAGE,
        ["sh", "-c", "echo -n kept > /data/who"],
        volumes={legacy: {"bind": "/data", "mode": "rw"}},
        remove=True,
    )

    deploy_ok(deployer, "legacy")

    one = container_of(docker_client, env_id, "a", "b-c")
    two = container_of(docker_client, env_id, "a-b", "c")
    assert mounted(one) == [legacy]
    assert mounted(two) == [f"cat-{env_id}_a-b_data"]  # not the other app's old volume
    assert exec_get(two, "http://b-c.a:9000/") == (True, "kept")
    assert exec_get(one, "http://c.a-b:9000/") == (True, "two")
