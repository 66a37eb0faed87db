"""Environment networks on the real engine take their subnets from the configured pool."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest
from docker.types import IPAMConfig, IPAMPool

from workers.engine import EngineError
from workers.engine.docker import DockerEngine

pytestmark = pytest.mark.docker

# Two /29 networks; away from the default pool (10.210.0.0/16) and from the /24s the tracker
# benchmark takes out of 10.213.0.0/16, so other runs on the engine are unlikely to hold it.
POOL = IPv4Network("10.219.7.0/28")
PREFIX = 29


@pytest.fixture
def driver(docker_client) -> DockerEngine:
    return DockerEngine(docker_client)


def subnet_of(docker_client, name: str) -> IPv4Network:
    [config] = docker_client.networks.get(name).attrs["IPAM"]["Config"]
    return IPv4Network(config["Subnet"])


def test_environment_networks_get_distinct_subnets_until_the_pool_is_full(
    driver, docker_client, engine_labels
) -> None:
    run = engine_labels["io.catalog.test-run"]
    first, second, third = (f"catalog-test-{run}-{n}" for n in ("a", "b", "c"))

    driver.ensure_network(first, engine_labels, POOL, PREFIX)
    driver.ensure_network(second, engine_labels, POOL, PREFIX)
    driver.ensure_network(first, engine_labels, POOL, PREFIX)  # exists: reused as it is

    subnets = {subnet_of(docker_client, first), subnet_of(docker_client, second)}
    assert subnets == set(POOL.subnets(new_prefix=PREFIX))
    gateway = docker_client.networks.get(first).attrs["IPAM"]["Config"][0]["Gateway"]
    assert gateway == str(subnet_of(docker_client, first).network_address + 1)
    assert len(docker_client.networks.list(names=[first])) == 1
    with pytest.raises(EngineError, match=r"CATALOG_NETWORK_POOL 10\.219\.7\.0/28 holds 2 netw"):
        driver.ensure_network(third, engine_labels, POOL, PREFIX)
    assert not docker_client.networks.list(names=[third])


def test_a_subnet_taken_after_the_listing_is_passed_for_the_next_one(
    driver, docker_client, engine_labels, monkeypatch
) -> None:
    """Two workers race for one subnet: the engine refuses the loser, which takes the next."""
    run = engine_labels["io.catalog.test-run"]
    taken = IPAMPool(subnet=str(next(POOL.subnets(new_prefix=PREFIX))))
    racer = docker_client.api.create_network(
        f"catalog-test-{run}-racer", labels=engine_labels, ipam=IPAMConfig(pool_configs=[taken])
    )
    listed = docker_client.api.networks()
    unseen = [network for network in listed if network["Id"] != racer["Id"]]
    monkeypatch.setattr(docker_client.api, "networks", lambda *args, **kwargs: unseen)

    driver.ensure_network(f"catalog-test-{run}-env", engine_labels, POOL, PREFIX)

    monkeypatch.undo()
    assert subnet_of(docker_client, f"catalog-test-{run}-env") == IPv4Network("10.219.7.8/29")


def test_without_a_pool_the_engine_chooses_the_subnet(driver, docker_client, engine_labels):
    name = f"catalog-test-{engine_labels['io.catalog.test-run']}-default"

    driver.ensure_network(name, engine_labels)

    assert not subnet_of(docker_client, name).overlaps(POOL)
