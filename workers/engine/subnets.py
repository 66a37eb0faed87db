"""Subnets for environment networks: the first free one of the configured address pool."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Network, ip_network


def free_subnet(pool: IPv4Network, prefix: int, used: Iterable[IPv4Network]) -> IPv4Network | None:
    """The first /`prefix` subnet of `pool` that overlaps none of `used`; None when none is left.

    One sweep over the used networks in address order: a candidate that overlaps one moves
    to the first subnet after it, so a large network in use is passed in one step.
    """
    size = 2 ** (32 - prefix)
    start = int(pool.network_address)
    for network in sorted(used):
        if int(network.network_address) >= start + size:
            break  # the candidate ends before this network and all later ones begin
        if int(network.broadcast_address) >= start:
            start = (int(network.broadcast_address) // size + 1) * size
    if start + size - 1 > int(pool.broadcast_address):
        return None
    return IPv4Network((start, prefix))


def subnets_in_use(networks: Iterable[Mapping]) -> list[IPv4Network]:
    """The IPv4 subnets of the engine's networks (`client.api.networks()` summaries)."""
    found = []
    for network in networks:
        for config in (network.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                subnet = ip_network(config["Subnet"], strict=False)
                if subnet.version == 4:
                    found.append(subnet)
    return found


def capacity(pool: IPv4Network, prefix: int) -> int:
    """How many /`prefix` subnets the pool holds."""
    return 2 ** (prefix - pool.prefixlen)
