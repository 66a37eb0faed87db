"""Image references (hole 4, 5): registry references only, from registries the operator allows."""

from __future__ import annotations

import pytest

from packages.errors import ManifestValidationError
from packages.imageref import Reference, RegistryPolicy, carries, parse, reference_problem
from packages.limits import DEFAULT_LIMITS, Limits
from packages.manifest import validate_manifest

ID = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("reference", "parsed"),
    [
        ("nginx", Reference(None, "nginx", None, None)),
        ("library/nginx:1.25", Reference(None, "library/nginx", "1.25", None)),
        ("localhost:5000/app", Reference("localhost:5000", "app", None, None)),
        ("ghcr.io/org/app:2@" + ID, Reference("ghcr.io", "org/app", "2", ID)),
        (
            "registry.example.com:5000/a/b",
            Reference("registry.example.com:5000", "a/b", None, None),
        ),
        (ID, Reference(None, "sha256", "0123456789abcdef" * 4, None)),
        ("LOCALHOST/x:1", Reference("LOCALHOST", "x", "1", None)),
    ],
)
def test_references_split_as_the_engine_splits_them(reference, parsed):
    assert parse(reference) == parsed


def test_the_exact_reference_always_writes_its_tag_out():
    assert parse("nginx").exact == "nginx:latest"
    assert parse("localhost:5000/app").exact == "localhost:5000/app:latest"
    assert parse("app:1@" + ID).exact == "app@" + ID


@pytest.mark.parametrize(
    ("reference", "words"),
    [
        (ID, "is an image id"),
        ("SHA256:" + "a" * 64, "is an image id"),
        ("0123456789ab", "looks like an image id"),  # an id's short form
        ("abc", "looks like an image id"),  # any hex prefix matches an id
        ("catalog.local/other-tenant/org.other.app:0123456789abcdef-01234567", "catalog's own"),
        ("CATALOG.LOCAL:443/t/app:1", "catalog's own"),
        ("127.0.0.1:2375/x", "loopback"),
        ("127.1:2375/x", "loopback"),  # inet_aton's short form of 127.0.0.1
        ("2130706433:2375/x", "loopback"),  # and its decimal form
        ("0x7f.0.0.1:2375/x", "loopback"),
        ("localhost:5000/x", "loopback"),
        ("localhost/x", "loopback"),
        ("registry.localhost/x", "loopback"),
        ("169.254.169.254/latest", "link-local"),
        ("10.1.2.3:5000/x", "private"),
        ("192.168.0.10/x", "private"),
        ("0.0.0.0:2375/x", "loopback"),
        ("registry.local/x", "local"),
        ("nas.lan:5000/x", "local"),
        ("Registry.Internal/x", "local"),
        # An upper-case first part is a registry to newer engines, not a Docker Hub path.
        ("LOCALHOST/x:1", "loopback"),
        ("LocalHost/x", "loopback"),
        ("POSTGRES/x:1", "local"),  # a single-label name resolves on the engine's network
        ("localhost./x", "loopback"),  # trailing dots
        ("registry.local./x", "local"),
        ("[::1]:5000/x", "loopback"),  # IPv6 literals
        ("[fe80::1]/x", "link-local"),
    ],
)
def test_what_is_no_registry_reference_or_not_public_is_refused(reference, words):
    problem = reference_problem(reference)
    assert problem is not None and words in problem, problem


@pytest.mark.parametrize(
    "reference",
    [
        "nginx",
        "nginx:1.25",
        "library/nginx@" + ID,
        "catalog-test/busybox:latest",
        "ghcr.io/org/app:2",
        "registry.example.com:5000/org/app",
        "8.8.8.8:5000/app",
        "cafe:1.0",  # a hex name with its tag names no id
    ],
)
def test_public_registry_references_are_accepted_by_default(reference):
    assert reference_problem(reference) is None


def test_the_operator_lists_a_private_registry_by_name_and_port():
    policy = RegistryPolicy.from_setting("*, 127.0.0.1:5000")
    assert reference_problem("127.0.0.1:5000/app:1", policy) is None
    assert "loopback" in reference_problem("127.0.0.1:2375/app:1", policy)
    assert reference_problem("nginx:1", policy) is None


def test_without_a_star_only_the_listed_registries_serve():
    policy = RegistryPolicy.from_setting("ghcr.io,docker.io")
    assert reference_problem("ghcr.io/org/app:1", policy) is None
    assert reference_problem("nginx:1", policy) is None  # Docker Hub is docker.io
    assert "not one of CATALOG_REGISTRIES" in reference_problem("quay.io/org/app:1", policy)
    closed = RegistryPolicy.from_setting("ghcr.io")
    assert "docker.io is not one of CATALOG_REGISTRIES" in reference_problem("nginx", closed)


def test_an_image_counts_only_when_it_carries_the_reference_itself():
    attrs = {"RepoTags": ["nginx:1.25"], "RepoDigests": ["nginx@" + ID]}
    assert carries(attrs, parse("docker.io/library/nginx:1.25"))
    assert carries(attrs, parse("nginx@" + ID))
    assert not carries(attrs, parse("nginx"))  # :latest is another tag
    assert not carries({"RepoTags": [], "RepoDigests": []}, parse("0123456789ab:latest"))


def _manifest(image: str) -> dict:
    return {
        "format": "catalog/v1",
        "name": "org.acme.web",
        "version": "1.0.0",
        "type": "application",
        "services": {"web": {"image": image}},
    }


@pytest.mark.parametrize("image", [ID, "0123456789ab", "catalog.local/t/app:1", "127.0.0.1:2375/x"])
def test_an_upload_naming_no_runnable_reference_is_refused_naming_the_service(image):
    with pytest.raises(ManifestValidationError) as caught:
        validate_manifest(_manifest(image))
    problems = {(p.path, p.message) for p in caught.value.problems}
    assert any(path == "services.web.image" and image in m for path, m in problems), problems


def test_an_upload_checks_the_registries_it_is_given():
    listed = Limits(registries=RegistryPolicy.from_setting("*,127.0.0.1:5000"))
    assert validate_manifest(_manifest("127.0.0.1:5000/app:1"), limits=listed)
    with pytest.raises(ManifestValidationError):
        validate_manifest(_manifest("127.0.0.1:5000/app:1"), limits=DEFAULT_LIMITS)
