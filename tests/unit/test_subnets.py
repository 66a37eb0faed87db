"""Choosing an environment network's subnet from the address pool, and the pool's settings."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from catalog import config
from workers.engine.subnets import capacity, free_subnet, subnets_in_use

POOL = IPv4Network("10.210.0.0/16")


def nets(*texts: str) -> list[IPv4Network]:
    return [IPv4Network(text) for text in texts]


@pytest.mark.parametrize(
    ("used", "expected"),
    [
        ([], "10.210.0.0/24"),
        (nets("172.17.0.0/16", "192.168.0.0/20"), "10.210.0.0/24"),  # outside the pool
        (nets("10.210.0.0/24"), "10.210.1.0/24"),
        (nets("10.210.0.0/24", "10.210.1.0/24", "10.210.3.0/24"), "10.210.2.0/24"),
        (nets("10.210.1.0/24", "10.210.0.0/24"), "10.210.2.0/24"),  # in any order
        (nets("10.210.0.128/25"), "10.210.1.0/24"),  # a smaller network inside a candidate
        (nets("10.210.0.8/29", "10.210.1.200/30"), "10.210.2.0/24"),
        (nets("10.210.0.0/20"), "10.210.16.0/24"),  # a larger one covers 16 candidates
        (nets("10.210.0.0/20", "10.210.4.0/24", "10.210.16.0/23"), "10.210.18.0/24"),
        (nets("10.0.0.0/8", "11.0.0.0/8"), None),  # the whole pool is covered
        (nets("10.210.0.0/17", "10.210.128.0/17"), None),
    ],
)
def test_the_first_subnet_overlapping_no_used_network(used, expected) -> None:
    found = free_subnet(POOL, 24, used)
    assert found == (IPv4Network(expected) if expected else None)


def test_an_exhausted_pool_has_no_free_subnet() -> None:
    small = IPv4Network("10.213.7.0/28")
    assert capacity(small, 29) == 2
    assert free_subnet(small, 29, []) == IPv4Network("10.213.7.0/29")
    assert free_subnet(small, 29, nets("10.213.7.0/29")) == IPv4Network("10.213.7.8/29")
    assert free_subnet(small, 29, nets("10.213.7.0/29", "10.213.7.8/29")) is None
    assert free_subnet(small, 29, nets("10.213.7.12/30")) == IPv4Network("10.213.7.0/29")
    assert free_subnet(small, 29, nets("10.213.7.4/30", "10.213.7.12/30")) is None


def test_a_pool_of_one_subnet() -> None:
    pool = IPv4Network("10.213.7.0/24")
    assert free_subnet(pool, 24, []) == pool
    assert free_subnet(pool, 24, nets("10.213.7.64/26")) is None


def test_the_subnets_in_use_are_read_from_the_engine_network_list() -> None:
    listed = [
        {"Name": "bridge", "IPAM": {"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "x"}]}},
        {"Name": "host", "IPAM": {"Config": []}},
        {"Name": "none", "IPAM": {"Config": None}},
        {
            "Name": "dual",
            "IPAM": {"Config": [{"Subnet": "10.210.0.0/24"}, {"Subnet": "fd00::/64"}]},
        },
        {"Name": "odd", "IPAM": {"Config": [{"Gateway": "10.1.0.1"}, {"Subnet": "garbage"}]}},
        {"Name": "bare"},
    ]
    assert subnets_in_use(listed) == nets("172.17.0.0/16", "10.210.0.0/24")


# -- the settings -------------------------------------------------------------------------------


def test_the_default_pool_holds_256_networks_of_slash_24() -> None:
    settings = config.load({})
    assert (settings.network_pool, settings.network_prefix) == ("10.210.0.0/16", 24)
    assert capacity(IPv4Network(settings.network_pool), settings.network_prefix) == 256


def test_the_pool_and_prefix_are_read_from_the_environment() -> None:
    settings = config.load(
        {"CATALOG_NETWORK_POOL": "10.213.7.0/28", "CATALOG_NETWORK_PREFIX": "/29"}
    )
    assert (settings.network_pool, settings.network_prefix) == ("10.213.7.0/28", 29)


def test_an_empty_pool_leaves_subnets_to_the_engine() -> None:
    assert config.load({"CATALOG_NETWORK_POOL": ""}).network_pool == ""
    # Without a pool there is nothing to check the prefix against.
    assert config.load({"CATALOG_NETWORK_POOL": "", "CATALOG_NETWORK_PREFIX": "8"})


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"CATALOG_NETWORK_POOL": "10.210.0.0"}, "CATALOG_NETWORK_PREFIX"),  # a /32: no /24 in it
        ({"CATALOG_NETWORK_POOL": "10.210.0.1/16"}, "CATALOG_NETWORK_POOL"),  # host bits set
        ({"CATALOG_NETWORK_POOL": "fd00::/48"}, "CATALOG_NETWORK_POOL"),
        ({"CATALOG_NETWORK_POOL": "ten"}, "CATALOG_NETWORK_POOL"),
        ({"CATALOG_NETWORK_PREFIX": "15"}, "CATALOG_NETWORK_PREFIX"),  # wider than the pool
        ({"CATALOG_NETWORK_PREFIX": "30"}, "CATALOG_NETWORK_PREFIX"),
        ({"CATALOG_NETWORK_PREFIX": "x"}, "CATALOG_NETWORK_PREFIX"),
        (
            {"CATALOG_NETWORK_POOL": "10.0.0.0/8", "CATALOG_NETWORK_PREFIX": "7"},
            "CATALOG_NETWORK_PREFIX",
        ),
    ],
)
def test_a_pool_or_prefix_that_cannot_work_is_refused_naming_the_variable(environ, named) -> None:
    with pytest.raises(ValueError, match=named):
        config.load(environ)


@pytest.mark.parametrize(("pool", "prefix"), [("10.210.0.0/16", 16), ("10.213.7.0/28", 29)])
def test_a_prefix_from_the_pools_own_to_29_is_accepted(pool, prefix) -> None:
    config.check_network_pool(pool, prefix)
