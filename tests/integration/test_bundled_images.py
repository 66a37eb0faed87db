"""Bundled images on the real engine (D30, D31): loaded under catalog names, run by id.

A package bundles a `docker save` tarball whose RepoTags say `nginx:latest`, while the engine's
own `nginx:latest` (another tenant's, say) points elsewhere. The deploy must run the bundled
image by id under `catalog.local/...`, and `nginx:latest` must still point where it did.
A second deploy reuses the loaded image: the engine records no second load.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from docker.errors import ImageNotFound, NotFound
from sqlalchemy import select, update

from catalog import settings_of
from catalog.models import Deployment, Tenant
from tests.conftest import TEST_IMAGE
from tests.integration.conftest import package_bytes
from tests.unit.test_images import Entry, Image, docker_save, rootfs, tar_of
from workers.deploy.images import ensure_bundled_image
from workers.engine.docker import DockerEngine
from workers.tracker.prune import TenantImages, prune_images

TARBALL = "images/nginx.tar"
PACKAGE = "org.acme.bundled"


def build_image(docker_client, purpose: str) -> str:
    """A new image of its own id (the test image plus a unique label); built offline."""
    dockerfile = f"FROM {TEST_IMAGE}\nLABEL io.catalog.test.purpose={purpose}-{uuid.uuid4().hex}\n"
    image, _ = docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True)
    return image.id


def retagged(saved: bytes, repo_tags: list[str]) -> bytes:
    """A `docker save` tarball with its RepoTags (and legacy `repositories`) replaced."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(saved)) as source,
        tarfile.open(fileobj=out, mode="w") as target,
    ):
        for info in source.getmembers():
            data = source.extractfile(info).read() if info.isreg() else b""
            if info.name == "manifest.json":
                entries = json.loads(data)
                entries[0]["RepoTags"] = repo_tags
                data = json.dumps(entries).encode()
            elif info.name == "repositories":
                layer = entries[0]["Layers"][-1].split("/")[0]
                repositories: dict[str, dict[str, str]] = {}
                for tag in repo_tags:
                    name, _, version = tag.rpartition(":")
                    repositories.setdefault(name, {})[version] = layer
                data = json.dumps(repositories).encode()
            info.size = len(data)
            target.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def remove_image(docker_client, reference: str) -> None:
    with contextlib.suppress(ImageNotFound, NotFound):
        docker_client.images.remove(reference, force=True, noprune=False)


@pytest.fixture
def engine_nginx(docker_client):
    """The engine's own `nginx:latest`, pointing at an image of its own; restored afterwards."""
    try:
        before = docker_client.images.get("nginx:latest").id
    except ImageNotFound:
        before = None
    other = build_image(docker_client, "engine-nginx")
    docker_client.api.tag(other, "nginx", "latest")
    yield other
    if before is not None:
        docker_client.api.tag(before, "nginx", "latest")
    else:
        remove_image(docker_client, "nginx:latest")
    remove_image(docker_client, other)


@pytest.fixture
def bundled_nginx(docker_client):
    """(tarball, image id): a new image saved with RepoTags ["nginx:latest"], then removed from
    the engine so that deploying really loads it; its catalog tags go afterwards."""
    image_id = build_image(docker_client, "bundled")
    tarball = retagged(b"".join(docker_client.api.get_image(image_id)), ["nginx:latest"])
    docker_client.images.remove(image_id)
    with pytest.raises(ImageNotFound):
        docker_client.images.get(image_id)
    yield tarball, image_id
    try:
        tags = docker_client.images.get(image_id).tags
    except ImageNotFound:
        tags = []
    for tag in tags:
        assert tag.startswith("catalog.local/"), tags
        remove_image(docker_client, tag)
    remove_image(docker_client, image_id)


def load_events(docker_client, image_id: str, since: float) -> list[dict]:
    until = time.time() + 0.1
    events = docker_client.events(
        since=since, until=until, decode=True, filters={"type": "image", "event": "load"}
    )
    return [e for e in events if e.get("id") == image_id]


def messages(deployment: dict) -> list[str]:
    return [event["message"] for event in deployment["events"]]


def bundled_package(tarball: bytes, version: str = "1.0.0") -> bytes:
    services = {
        "web": {
            "image": {"bundled": TARBALL, "tag": "nginx:latest"},
            "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
            "ports": [{"container": 8080, "publish": True}],
            "healthcheck": {"http": {"port": 8080, "path": "/"}, "interval": "1s", "retries": 10},
        }
    }
    return package_bytes(PACKAGE, version, services=services, files={TARBALL: tarball})


# --- D30 -----------------------------------------------------------------------------------------


def test_a_bundled_nginx_latest_runs_by_id_and_the_engines_nginx_latest_is_untouched(
    engine_nginx, bundled_nginx, deployer, start_worker, docker_client
):
    tarball, bundled_id = bundled_nginx
    assert bundled_id != engine_nginx
    start_worker()
    package = bundled_package(tarball)
    deployer.publish(package)
    env = deployer.create_env("bundled")
    deployer.add_app("bundled", "web", PACKAGE)

    since = time.time() - 1
    first = deployer.wait("bundled", deployer.deploy("bundled"))

    assert first["status"] == "succeeded", first["events"]
    # The engine's nginx:latest still points where it did; the bundled image has only its
    # catalog-owned name, and the container runs it by id.
    assert docker_client.images.get("nginx:latest").id == engine_nginx
    (name,) = docker_client.images.get(bundled_id).tags
    assert name.startswith("catalog.local/")
    assert f"/{PACKAGE}:" in name
    assert name.rsplit(":", 1)[1].startswith(hashlib.sha256(package).hexdigest()[:16])
    (container,) = docker_client.containers.list(
        all=True, filters={"label": f"io.catalog.env={env['id']}"}
    )
    assert container.attrs["Image"] == bundled_id
    assert container.attrs["Config"]["Image"] == bundled_id
    assert container.status == "running"
    host, port = deployer.endpoint("bundled", "web")
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=5) as response:
        assert response.status == 200
    assert any(f"{TARBALL} loaded as {name}" in m for m in messages(first)), messages(first)
    assert len(load_events(docker_client, bundled_id, since)) == 1

    # Deploying again reuses the image: no second load.
    since = time.time()
    second = deployer.wait("bundled", deployer.deploy("bundled"))

    assert second["status"] == "succeeded", second["events"]
    assert any(f"{TARBALL} already loaded as {name}" in m for m in messages(second))
    assert not any(" loaded as " in m and "already" not in m for m in messages(second))
    assert load_events(docker_client, bundled_id, since) == []
    assert docker_client.images.get("nginx:latest").id == engine_nginx
    assert docker_client.images.get(bundled_id).tags == [name]


def test_loading_twice_loads_once(bundled_nginx, docker_client):
    tarball, bundled_id = bundled_nginx
    tenant, digest = uuid.uuid4().hex, "sha256:" + "0f" * 32
    calls = []
    load_image = docker_client.api.load_image

    def counting(body):
        calls.append(1)
        return load_image(body)

    def ensure():
        return ensure_bundled_image(
            DockerEngine(docker_client), tenant_id=tenant, package=PACKAGE, digest=digest,
            image={"bundled": TARBALL, "tag": "nginx"}, open_member=lambda _: io.BytesIO(tarball),
        )  # fmt: skip

    docker_client.api.load_image = counting
    try:
        first, second = ensure(), ensure()
    finally:
        del docker_client.api.load_image

    assert (first.loaded, second.loaded) == (True, False)
    assert first.image_id == second.image_id == bundled_id
    assert first.name == second.name
    assert first.name.startswith(f"catalog.local/{tenant}/{PACKAGE}:{'0f' * 8}-")
    assert calls == [1]
    assert docker_client.images.get(bundled_id).tags == [first.name]


# --- D31 -----------------------------------------------------------------------------------------

MALFORMED = [
    pytest.param(
        docker_save(Image(layers=[rootfs(Entry("../../etc/cron.d/x", b"* * * * * root sh"))])),
        ["images/nginx.tar", "path traversal"],
        id="traversal-in-a-layer",
    ),
    pytest.param(
        docker_save(Image(layers=[tar_of([(f"f{i}", b"x")]) for i in range(128)])),
        ["images/nginx.tar", "128 layers, limit 127"],
        id="too-many-layers",
    ),
    pytest.param(
        docker_save(
            manifest=[
                {
                    "Config": "../../config.json",
                    "RepoTags": ["nginx:latest"],
                    "Layers": ["/var/lib/docker/layer.tar"],
                }
            ]
        ),
        ["images/nginx.tar", "points outside the tarball"],
        id="manifest-pointing-outside",
    ),
]


def stored_files(blob_dir: Path) -> list[Path]:
    return [p for p in blob_dir.rglob("*") if p.is_file()] if blob_dir.exists() else []


@pytest.mark.parametrize(("tarball", "words"), MALFORMED)
def test_a_malformed_image_tarball_is_refused_on_upload_and_nothing_is_stored(
    tarball, words, client, make_caller, app
):
    caller = make_caller("acme", "publisher")
    response = client.post(
        "/v1/packages",
        data=bundled_package(tarball),
        headers={**caller.headers, "Content-Type": "application/gzip"},
    )
    assert response.status_code == 400, response.get_json()
    body = response.get_json(force=True)
    said = json.dumps(body)
    for word in words:
        assert word in said, body
    assert stored_files(Path(settings_of(app).blob_dir)) == []
    listed = client.get("/v1/packages", headers=caller.headers).get_json()
    assert PACKAGE not in json.dumps(listed)


# --- pruning -------------------------------------------------------------------------------------


def catalog_tags(docker_client, image_id: str) -> set[str]:
    try:
        return set(docker_client.images.get(image_id).tags)
    except ImageNotFound:
        return set()


def test_bundled_images_nothing_needs_are_pruned_and_the_rest_kept(
    app, bundled_nginx, deployer, start_worker, docker_client
):
    tarball, bundled_id = bundled_nginx
    worker = start_worker()
    deployer.publish(bundled_package(tarball, "1.0.0"))
    deployer.publish(bundled_package(tarball, "1.1.0"))
    deployer.create_env("pruned")
    deployer.add_app("pruned", "web", PACKAGE, version="1.0.0")
    assert deployer.wait("pruned", deployer.deploy("pruned"))["status"] == "succeeded"
    (old,) = catalog_tags(docker_client, bundled_id)
    deployer.call("PATCH", "/environments/pruned/apps/web", json={"version": "1.1.0"})
    assert deployer.wait("pruned", deployer.deploy("pruned"))["status"] == "succeeded"
    (new,) = catalog_tags(docker_client, bundled_id) - {old}
    # Another catalog's image on the same engine: a tenant this one does not have.
    foreign = f"catalog.local/{uuid.uuid4().hex}/{PACKAGE}:0123456789abcdef-01234567"
    docker_client.api.tag(bundled_id, *foreign.rsplit(":", 1))
    rt = SimpleNamespace(
        sessions=app.extensions["catalog"]["sessionmaker"],
        engine=DockerEngine(docker_client),
    )

    # Version 1.0.0 is no revision's any more; 1.1.0 runs in the current one.
    assert prune_images(rt) == [old]
    assert catalog_tags(docker_client, bundled_id) == {new, foreign}

    # The environment goes: nothing needs 1.1.0's image (now its only name) any more.
    deployer.call("DELETE", "/environments/pruned")
    deadline = time.monotonic() + 60
    while (
        deployer.client.get("/v1/environments/pruned", headers=deployer.headers).status_code != 404
    ):
        assert time.monotonic() < deadline, "the environment was not torn down in 60 s"
        time.sleep(0.2)
    worker.terminate()
    worker.stop()
    remove_image(docker_client, foreign)
    with app.extensions["catalog"]["sessionmaker"]() as session:
        acme = session.scalar(select(Tenant.id).where(Tenant.name == "acme"))
    read = TenantImages(rt, acme)
    assert read.settled()

    # A deployment of the tenant is queued (no worker takes it): it could be about to run any
    # of the tenant's images, so none is removed, also by a pass that read before it came.
    deployer.publish(package_bytes("org.acme.plain", "1.0.0"))
    deployer.create_env("queued")
    deployer.add_app("queued", "web", "org.acme.plain")
    revision = deployer.deploy("queued")
    assert deployer.deployment("queued", revision)["status"] == "queued"

    assert not read.settled()
    assert prune_images(rt) == []
    assert catalog_tags(docker_client, bundled_id) == {new}

    # A container created from the image (a stray one, stopped): the engine keeps its name.
    with app.extensions["catalog"]["sessionmaker"]() as session:
        session.execute(update(Deployment).values(status="cancelled"))
        session.commit()
    stray = docker_client.containers.create(bundled_id, ["true"])
    try:
        assert prune_images(rt) == []
        assert catalog_tags(docker_client, bundled_id) == {new}
    finally:
        stray.remove(force=True)

    assert prune_images(rt) == [new]
    with pytest.raises(ImageNotFound):
        docker_client.images.get(bundled_id)
