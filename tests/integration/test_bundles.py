"""Offline bundles between two catalogs (two databases): export, import, deploy with no registry.

The image the packages run exists only on catalog A's side: it is made here, saved into the
bundle, then removed from the engine, and catalog B's worker may not pull. A bundle changed by
one byte, or signed by a key B does not trust, publishes nothing; the same bundle twice
changes nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import tarfile
import uuid
from pathlib import Path

import docker.errors
import pytest
from sqlalchemy.engine import make_url

from catalog import create_app
from catalog.auth import authenticate
from catalog.migrate import upgrade
from catalog.services import tenants
from catalogctl.main import main
from tests.conftest import (
    BROKER_URL,
    DATABASE_URL,
    TASK_QUEUE,
    TEST_IMAGE,
    TEST_SECRET_KEY,
    _admin_execute,
    remove_labelled,
)
from tests.integration.conftest import package_bytes
from tests.integration.served import serve, service_env
from tests.integration.stack import Deployer

__all__ = ["serve", "service_env"]  # fixtures

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.rabbitmq]

WEB = ["sh", "-c", "mkdir -p /www && cp /marker /www/index.html && exec httpd -f -p 8080 -h /www"]


@pytest.fixture
def other_database():
    """Catalog B's database, migrated to head; dropped afterwards."""
    name = f"catalog_test_b_{uuid.uuid4().hex[:8]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    url = make_url(DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def bundled_image(docker_client):
    """An image of its own (a layer over the test image), so that removing it leaves nothing."""
    reference = f"catalog-test/bundled-{uuid.uuid4().hex[:8]}:1"
    container = docker_client.containers.create(TEST_IMAGE, ["sh", "-c", "echo bundled > /marker"])
    try:
        container.start()
        container.wait(timeout=30)
        repository, tag = reference.rsplit(":", 1)
        image = container.commit(repository=repository, tag=tag)
    finally:
        container.remove(force=True)
    yield reference
    # Loaded again under a catalog-owned name by the deployment: the same image id.
    with contextlib.suppress(docker.errors.NotFound):
        docker_client.images.remove(image.id, force=True)


def service(reference: str) -> dict:
    return {
        "web": {
            "image": reference,
            "command": WEB,
            "ports": [{"container": 8080}],
            "healthcheck": {"http": {"port": 8080, "path": "/"}, "interval": "1s", "retries": 20},
        }
    }


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def catalog_b(url: str, blobs: Path, home: Path):
    """Catalog B as an app on its own database, and a publisher token of tenant acme there."""
    app = create_app({
        "TESTING": True, "DATABASE_URL": url, "BLOB_DIR": str(blobs), "CATALOG_HOME": str(home),
        "BROKER_URL": BROKER_URL, "TASK_QUEUE": TASK_QUEUE, "SECRET_KEY": TEST_SECRET_KEY,
        "UPLOAD_RATE_LIMIT": "10000/minute", "READ_RATE_LIMIT": "100000/minute",
    })  # fmt: skip
    sessionmaker = app.extensions["catalog"]["sessionmaker"]
    with sessionmaker() as session:
        root_secret = tenants.bootstrap_admin(session)
    with sessionmaker() as session:
        root = authenticate(session.connection(), root_secret)
        tenants.create_tenant(session, root, "acme")
        _, secret = tenants.issue_token(session, root, "acme", "publisher")
    return app, secret


def listed(deployer: Deployer) -> tuple[list, list]:
    packages = deployer.call("GET", "/packages")["items"]
    images = deployer.call("GET", "/images")["items"]
    return packages, images


def flip_a_byte_of(bundle: Path, member_prefix: str, copy: Path) -> Path:
    shutil.copy(bundle, copy)
    with tarfile.open(copy) as tar:
        member = next(m for m in tar.getmembers() if m.name.startswith(member_prefix))
    with copy.open("r+b") as out:
        out.seek(member.offset_data + member.size // 2)
        byte = out.read(1)
        out.seek(-1, 1)
        out.write(bytes([byte[0] ^ 0xFF]))
    return copy


def test_a_bundle_carries_packages_and_images_to_a_catalog_with_no_registry(
    tmp_path, capsys, deployer, make_caller, serve, other_database, bundled_image, docker_client,
    start_worker,
):  # fmt: skip
    # Catalog A: a store at two versions and a front whose required slot takes the store.
    store = {
        "services": service(bundled_image),
        "outputs": {"url": "http://{{ services.web.hostname }}:8080/"},
    }
    deployer.publish(package_bytes("org.acme.bstore", "1.0.0", **store))
    deployer.publish(package_bytes("org.acme.bstore", "1.1.0", **store))
    front = package_bytes(
        "org.acme.bfront", "1.0.0", services=service(bundled_image),
        bindings={"store": {"package": "org.acme.bstore", "version": ">=1.0.0 <2.0.0",
                            "required": True}},
    )  # fmt: skip
    deployer.publish(front)
    token_a = make_caller("acme", "publisher").secret
    url_a = f"http://127.0.0.1:{serve(1)}"

    key, stranger = tmp_path / "signing.key", tmp_path / "stranger.key"
    assert cli(capsys, "bundle", "keygen", "-o", str(key))[0] == 0
    assert cli(capsys, "bundle", "keygen", "-o", str(stranger))[0] == 0
    bundle = tmp_path / "front.bundle"
    code, out, err = cli(capsys, "bundle", "export", "org.acme.bfront", "-o", str(bundle),
                         "--sign-key", str(key), "--url", url_a, "--token", token_a)  # fmt: skip
    assert code == 0, err
    assert "2 package(s), 1 image(s)" in out

    docker_client.images.remove(bundled_image)  # the engine B's worker uses never had it now
    assert not docker_client.images.list(name=bundled_image.rsplit(":", 1)[0])

    # Catalog B: another database, blob store and API.
    blobs_b, home_b = tmp_path / "blobs-b", tmp_path / "home-b"
    app_b, token_b = catalog_b(other_database, blobs_b, home_b)
    settings_b = {"CATALOG_DATABASE_URL": other_database, "CATALOG_BLOB_DIR": str(blobs_b),
                  "CATALOG_HOME": str(home_b)}  # fmt: skip
    port_b = serve(1, env=settings_b)
    url_b = f"http://127.0.0.1:{port_b}"
    to_b = ("--url", url_b, "--token", token_b)
    driver = Deployer(app_b.test_client(), {"Authorization": f"Bearer {token_b}"})
    try:
        # Signed by a key B does not trust, or one byte changed: nothing is published.
        code, _, err = cli(
            capsys, "bundle", "import", str(bundle), "--trust", f"{stranger}.pub", *to_b
        )
        assert code == 1 and "a key this catalog does not trust" in err
        for prefix in ("images/", "packages/", "bundle.json"):
            changed = flip_a_byte_of(bundle, prefix, tmp_path / "changed.bundle")
            code, _, err = cli(
                capsys, "bundle", "import", str(changed), "--trust", f"{key}.pub", *to_b
            )
            assert code == 1, (prefix, err)
            assert (
                ("does not match its digest" in err)
                or ("does not verify" in err)
                or ("not JSON" in err)
            )
        assert listed(driver) == ([], [])

        # Without --trust, the keys an admin registered: none yet, then the signer's.
        code, _, err = cli(capsys, "bundle", "import", str(bundle), *to_b)
        assert code == 1 and "no key to check the bundle's signature" in err

        code, out, err = cli(
            capsys, "bundle", "import", str(bundle), "--trust", f"{key}.pub", *to_b
        )
        assert code == 0, err
        assert "3 published, 0 here already" in out
        packages, images = listed(driver)
        assert sorted(p["name"] for p in packages) == ["org.acme.bfront", "org.acme.bstore"]
        assert [i["reference"] for i in images] == [bundled_image]
        for name, version in (("org.acme.bstore", "1.1.0"), ("org.acme.bfront", "1.0.0")):
            here = driver.call("GET", f"/packages/{name}/versions/{version}")["digest"]
            there = deployer.call("GET", f"/packages/{name}/versions/{version}")["digest"]
            assert here == there  # digests kept

        code, out, err = cli(
            capsys, "bundle", "import", str(bundle), "--trust", f"{key}.pub", *to_b
        )
        assert code == 0, err
        assert "0 published, 3 here already" in out
        assert listed(driver) == (packages, images)

        # Deployed on B by a worker that may not pull: the stored image runs.
        start_worker(**{**settings_b, "CATALOG_HOME": str(tmp_path / "worker-b")},
                     CATALOG_ALLOW_PULL="false")  # fmt: skip
        driver.create_env("offline")
        driver.add_app("offline", "store", "org.acme.bstore")
        driver.add_app("offline", "front", "org.acme.bfront", bindings={"store": "store"})
        deployment = driver.wait("offline", driver.deploy("offline"))
        assert deployment["status"] == "succeeded", deployment["events"]
        assert any(
            f"offline image {bundled_image} loaded" in e["message"] for e in deployment["events"]
        )
        (web,) = docker_client.containers.list(
            filters={"label": [f"io.catalog.env={driver.env_ids[0]}", "io.catalog.app=front"]}
        )
        assert web.exec_run(["cat", "/www/index.html"]).output == b"bundled\n"
    finally:
        for env_id in driver.env_ids:
            remove_labelled(docker_client, f"io.catalog.env={env_id}")
        for engine in app_b.extensions["catalog"].get("docker", {}).values():
            engine.close()
        app_b.extensions["catalog"]["engine"].dispose()
        app_b.extensions["catalog"]["read_engine"].dispose()
