"""Engine names split back into their parts one way only (hole 15)."""

from __future__ import annotations

import itertools
import re

from workers.engine.names import container_name, hostname, legacy_volume_name, volume_name

DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\Z")  # apps, services
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")  # volumes


def words(alphabet: str, length: int, grammar: re.Pattern) -> list[str]:
    every = (
        "".join(letters)
        for n in range(1, length + 1)
        for letters in itertools.product(alphabet, repeat=n)
    )
    return [word for word in every if grammar.match(word)]


APPS = words("ab-", 4, DNS_LABEL)
VOLUMES = words("ab-_", 4, SLUG)


def test_volume_names_never_meet():
    names = {}
    for app, volume in itertools.product(APPS, VOLUMES):
        name = volume_name("e1", app, volume)
        assert name not in names, f"{(app, volume)} and {names[name]} share {name}"
        names[name] = (app, volume)


def test_the_issues_pair_gets_two_volumes_where_it_used_to_share_one():
    assert legacy_volume_name("e1", "a", "b-data") == legacy_volume_name("e1", "a-b", "data")
    assert volume_name("e1", "a", "b-data") != volume_name("e1", "a-b", "data")


def test_hostnames_and_container_names_never_meet():
    hostnames, containers = {}, {}
    for app, service in itertools.product(APPS, APPS):
        host = hostname(app, service)
        assert host not in hostnames, f"{(app, service)} and {hostnames[host]} share {host}"
        hostnames[host] = (app, service)
        name = container_name("0123456789abcdef", app, service, 0, 1)
        assert name not in containers, f"{(app, service)} and {containers[name]} share {name}"
        containers[name] = (app, service)
    assert hostname("a", "b-c") == "b-c.a" and hostname("a-b", "c") == "c.a-b"


def test_names_are_valid_for_the_engine():
    engine = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")
    assert engine.match(volume_name("0123abcd", "shop-db", "my_data"))
    assert engine.match(container_name("0123456789abcdef", "shop-db", "api", 2, 10))
    assert container_name("0123456789abcdef", "a-b", "c", 0, 3) == "cat-0123456789ab_a-b_c_0_r3"
