"""A package runs only the image its reference names (hole 4), from an allowed registry (hole 5).

On the real engine: an image id, a prefix of one or another tenant's catalog-owned name is
refused at upload and, for a package stored before the rule, by the worker; the worker's
lookup never falls back to matching an id.
"""

from __future__ import annotations

import uuid

import pytest

from packages.imageref import RegistryPolicy
from tests.conftest import TEST_IMAGE
from tests.integration.conftest import package_bytes
from workers.engine import EngineError
from workers.engine.docker import DockerEngine

pytestmark = pytest.mark.docker
GZIP = {"Content-Type": "application/gzip"}


@pytest.fixture
def driver(docker_client) -> DockerEngine:
    return DockerEngine(docker_client)


@pytest.fixture
def image_id(docker_client) -> str:
    return docker_client.images.get(TEST_IMAGE).id


@pytest.fixture
def foreign_bundled(docker_client):
    """The test image under another tenant's catalog-owned name, as a worker loads one."""
    name = f"catalog.local/{uuid.uuid4().hex}/org.other.private"
    docker_client.images.get(TEST_IMAGE).tag(name, tag="0123456789abcdef-01234567")
    yield f"{name}:0123456789abcdef-01234567"
    docker_client.images.remove(f"{name}:0123456789abcdef-01234567")


def _refused(driver: DockerEngine, reference: str, words: str) -> None:
    with pytest.raises(EngineError) as caught:
        driver.image_id(reference, pull=False)
    assert words in str(caught.value), caught.value


def test_the_worker_resolves_a_reference_to_exactly_its_image(driver, image_id):
    assert driver.image_id(TEST_IMAGE, pull=False) == image_id
    assert driver.image_id(TEST_IMAGE.removesuffix(":latest"), pull=False) == image_id


def test_the_worker_runs_no_image_by_its_id_or_a_prefix_of_it(driver, image_id):
    _refused(driver, image_id, "is an image id")
    hex_id = image_id.removeprefix("sha256:")
    for prefix in (hex_id[:12], hex_id[:5], hex_id):
        _refused(driver, prefix, "looks like an image id")


def test_the_worker_never_takes_an_id_match_for_a_name(driver, image_id):
    # A tagged reference whose name is an id prefix: the engine's lookup of the bare name
    # would match the id; the worker asks for the tag and the image must carry it.
    prefix = image_id.removeprefix("sha256:")[:12]
    _refused(driver, f"{prefix}:latest", "is not on the engine")


def test_the_worker_runs_no_image_of_the_catalogs_own_registry(driver, foreign_bundled):
    _refused(driver, foreign_bundled, "catalog's own registry")


def test_the_worker_calls_no_host_local_registry_unless_listed(driver):
    _refused(driver, "127.0.0.1:2375/x:1", "loopback")
    listed = RegistryPolicy.from_setting("*,127.0.0.1:2375")
    with pytest.raises(EngineError) as caught:  # allowed: asked for, and simply absent
        driver.image_id("127.0.0.1:2375/x:1", pull=False, registries=listed)
    assert "is not on the engine" in str(caught.value)


@pytest.fixture
def publisher(make_caller):
    return make_caller("acme", "publisher")


def _upload(client, publisher, image: str):
    body = package_bytes(services={"web": {"image": image}})
    return client.post("/v1/packages", data=body, headers={**publisher.headers, **GZIP})


def test_an_upload_naming_an_id_or_a_catalog_name_is_refused(
    client, publisher, image_id, foreign_bundled
):
    hex_id = image_id.removeprefix("sha256:")
    for image in (image_id, hex_id[:12], foreign_bundled, "127.0.0.1:2375/x:1"):
        response = _upload(client, publisher, image)
        assert response.status_code == 400, (image, response.json)
        paths = [error["path"] for error in response.json["errors"]]
        assert "services.web.image" in paths, response.json
    assert client.get("/v1/packages", headers=publisher.headers).json["items"] == []


@pytest.mark.parametrize("app_config", [{"REGISTRIES": "*,127.0.0.1:5000"}])
def test_an_upload_from_a_registry_the_operator_lists_is_accepted(client, publisher):
    assert _upload(client, publisher, "127.0.0.1:5000/app:1").status_code == 201
    assert _upload(client, publisher, "127.0.0.1:2375/app:1").status_code == 400
