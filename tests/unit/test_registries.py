"""Private registries on plain values: a registry server as credentials name it, and how a
deploy's pull is made (workers.deploy.registries.pull_for): on a registry tenants keep
credentials for, always a pull as the deploying tenant, whatever the engine holds."""

from __future__ import annotations

import pytest

from packages.imageref import PullPolicy, normalise_server, parse, server_of, server_problem
from workers.deploy.registries import Access, Pull, PullRefused, pull_for
from workers.engine import ANONYMOUS, PullAuth

REFERENCE = "127.0.0.1:5000/private/busybox:1"
OWN = PullAuth("acme", "s3cret-pa55")


@pytest.mark.parametrize(
    ("server", "normalised"),
    [
        ("ghcr.io", "ghcr.io"),
        ("Registry.Example.COM:5000", "registry.example.com:5000"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("localhost", "localhost"),
        ("[::1]:5000", "[::1]:5000"),
        ("docker.io", "docker.io"),
        ("index.docker.io", "docker.io"),
    ],
)
def test_a_server_is_kept_as_image_references_name_its_registry(server, normalised):
    assert server_problem(server) is None
    assert normalise_server(server) == normalised
    assert server_of(parse(f"{server}/org/app:1")) == normalised


def test_an_image_without_a_registry_is_docker_hubs():
    assert server_of(parse("nginx:1.25")) == server_of(parse("library/nginx")) == "docker.io"


@pytest.mark.parametrize(
    ("server", "words"),
    [
        ("https://ghcr.io", "no scheme or path"),
        ("ghcr.io/org", "no scheme or path"),
        ("user@ghcr.io", "no scheme or path"),
        ("ghcr .io", "no scheme or path"),
        ("", "host[:port]"),
        ("myregistry", "as the start of a repository path"),
        ("ghcr.io:0", "from 1 to 65535"),
        ("ghcr.io:70000", "from 1 to 65535"),
        ("ghcr.io:", "from 1 to 65535"),
        ("-bad.example", "not a host name"),
        ("a..b", "not a host name"),
        ("[not-v6]:5000", "not an IPv6 address"),
        ("catalog.local", "the catalog's own registry"),
        ("straße.example", "host[:port]"),
    ],
)
def test_a_server_that_no_reference_names_is_refused_saying_why(server, words):
    problem = server_problem(server)

    assert problem is not None and words in problem


def test_the_password_stays_out_of_the_repr():
    assert "s3cret-pa55" not in repr(OWN) and "acme" in repr(OWN)
    assert PullAuth() == ANONYMOUS and not ANONYMOUS.username


@pytest.mark.parametrize("policy", list(PullPolicy))
def test_an_unguarded_registry_follows_the_services_policy_as_the_engine_is_configured(policy):
    access = Access("docker.io", guarded=False)

    assert pull_for("nginx:1", policy, access, allow_pull=True) == Pull(policy, None)


@pytest.mark.parametrize("policy", [PullPolicy.IF_NOT_PRESENT, PullPolicy.ALWAYS])
def test_on_a_guarded_registry_every_deploy_pulls_as_the_deploying_tenant(policy):
    own = Access("127.0.0.1:5000", guarded=True, auth=OWN)
    none = Access("127.0.0.1:5000", guarded=True)

    assert pull_for(REFERENCE, policy, own, allow_pull=True) == Pull(PullPolicy.ALWAYS, OWN)
    # Another tenant's image on the engine proves nothing: a pull as nobody must succeed.
    assert pull_for(REFERENCE, policy, none, allow_pull=True) == Pull(PullPolicy.ALWAYS, ANONYMOUS)


def test_on_a_guarded_registry_never_pulling_cannot_be_honoured():
    access = Access("127.0.0.1:5000", guarded=True, auth=OWN)

    with pytest.raises(PullRefused, match="pull_policy cannot be never") as caught:
        pull_for(REFERENCE, PullPolicy.NEVER, access, allow_pull=True)
    assert REFERENCE in str(caught.value) and "s3cret" not in str(caught.value)
    with pytest.raises(PullRefused, match=r"pulling is off \(CATALOG_ALLOW_PULL\)"):
        pull_for(REFERENCE, PullPolicy.IF_NOT_PRESENT, access, allow_pull=False)


def test_always_pulling_with_pulls_off_is_refused_naming_the_setting():
    access = Access("docker.io", guarded=False)

    with pytest.raises(PullRefused, match=r"nginx:1: its pull_policy is always.*ALLOW_PULL"):
        pull_for("nginx:1", PullPolicy.ALWAYS, access, allow_pull=False)
    assert pull_for("nginx:1", PullPolicy.IF_NOT_PRESENT, access, allow_pull=False) == Pull(
        PullPolicy.IF_NOT_PRESENT, None
    )


@pytest.mark.parametrize(
    ("reference", "repository"),
    [
        ("nginx", "library/nginx"),
        ("docker.io/library/nginx:1", "library/nginx"),
        ("index.docker.io/acme/app", "acme/app"),
        ("127.0.0.1:5000/private/busybox:1", "private/busybox"),
    ],
)
def test_a_guard_is_kept_per_repository_as_its_server_names_it(reference, repository):
    from packages.imageref import parse
    from workers.deploy.registries import repository_of

    assert repository_of(parse(reference)) == repository
