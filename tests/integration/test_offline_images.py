"""POST /v1/images and /v1/bundle-keys: what an offline bundle's import stores, and who may."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.conftest import TEST_IMAGE
from tests.integration.test_bundled_images import retagged

pytestmark = [pytest.mark.docker, pytest.mark.postgres]

REFERENCE = "acme/app:1"


@pytest.fixture(scope="module")
def saved(docker_client) -> bytes:
    return b"".join(docker_client.images.get(TEST_IMAGE).save(named=True))


def upload(client, caller, body: bytes, reference: str = REFERENCE):
    return client.post(
        "/v1/images", query_string={"reference": reference}, data=body,
        headers={**caller.headers, "Content-Type": "application/x-tar"},
    )  # fmt: skip


def blob_count(app) -> int:
    root = app.extensions["catalog"]["blobs"].root / "sha256"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def test_an_image_tarball_is_stored_once_per_reference(app, client, make_caller, saved):
    publisher = make_caller("acme", "publisher")
    tarball = retagged(saved, [REFERENCE])
    first = upload(client, publisher, tarball)
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["digest"] == "sha256:" + hashlib.sha256(tarball).hexdigest()
    assert body["size"] == len(tarball)

    again = upload(client, publisher, tarball)
    assert (again.status_code, again.get_json()["id"]) == (200, body["id"])

    other = upload(client, publisher, retagged(saved, [REFERENCE, "acme/app:2"]))
    assert other.status_code == 409
    assert REFERENCE in other.get_json()["detail"]

    listed = client.get("/v1/images", headers=publisher.headers).get_json()["items"]
    assert [i["reference"] for i in listed] == [REFERENCE]
    stranger = make_caller("globex", "publisher")
    assert client.get("/v1/images", headers=stranger.headers).get_json()["items"] == []
    assert client.delete(f"/v1/images/{body['id']}", headers=stranger.headers).status_code == 404

    stored = blob_count(app)
    assert client.delete(f"/v1/images/{body['id']}", headers=publisher.headers).status_code == 204
    assert blob_count(app) == stored - 1
    assert client.get("/v1/images", headers=publisher.headers).get_json()["items"] == []


@pytest.mark.parametrize(
    ("body", "reference", "status", "words"),
    [
        (b"not a tarball at all" * 10, REFERENCE, 400, "not an image tarball of acme/app:1"),
        ("tagged otherwise", REFERENCE, 400, "holds no image tagged"),
        ("tagged", "sha256", 400, "is an image id"),
    ],
)
def test_a_tarball_that_is_not_the_image_is_refused_and_nothing_is_kept(
    app, client, make_caller, saved, body, reference, status, words
):
    publisher = make_caller("acme", "publisher")
    if body == "tagged otherwise":
        body = retagged(saved, ["acme/other:1"])
    elif body == "tagged":
        body = retagged(saved, [REFERENCE])
    before = blob_count(app)
    answer = upload(client, publisher, body, reference)
    assert answer.status_code == status, answer.get_json()
    assert words in str(answer.get_json())
    assert blob_count(app) == before
    assert client.get("/v1/images", headers=publisher.headers).get_json()["items"] == []


def test_a_viewer_may_not_store_images(client, make_caller, saved):
    viewer = make_caller("acme", "viewer")
    assert upload(client, viewer, retagged(saved, [REFERENCE])).status_code == 403


def test_bundle_keys_are_an_admins_to_register_and_anyones_to_read(client, make_caller):
    admin, publisher = make_caller("root", "admin"), make_caller("acme", "publisher")
    key = base64.b64encode(bytes(range(32))).decode()
    body = {"name": "site A", "public_key": key}
    assert client.post("/v1/bundle-keys", json=body, headers=publisher.headers).status_code == 403
    created = client.post("/v1/bundle-keys", json=body, headers=admin.headers)
    assert created.status_code == 201
    assert client.post("/v1/bundle-keys", json=body, headers=admin.headers).status_code == 409
    bad = client.post(
        "/v1/bundle-keys", json={"name": "x", "public_key": "abc"}, headers=admin.headers
    )
    assert bad.status_code == 400
    assert bad.get_json()["errors"][0]["path"] == "public_key"
    listed = client.get("/v1/bundle-keys", headers=publisher.headers).get_json()["items"]
    assert [k["public_key"] for k in listed] == [key]
    key_id = created.get_json()["id"]
    assert client.delete(f"/v1/bundle-keys/{key_id}", headers=publisher.headers).status_code == 403
    assert client.delete(f"/v1/bundle-keys/{key_id}", headers=admin.headers).status_code == 204


def test_a_tarball_not_the_digest_asked_for_or_a_pinned_reference_or_over_quota_is_refused(
    app, client, make_caller, saved
):
    publisher = make_caller("acme", "publisher")
    tarball = retagged(saved, [REFERENCE])
    wrong = client.post(
        "/v1/images", query_string={"reference": REFERENCE, "digest": "sha256:" + "0" * 64},
        data=tarball, headers={**publisher.headers, "Content-Type": "application/x-tar"},
    )  # fmt: skip
    assert wrong.status_code == 400
    assert wrong.get_json()["errors"][0]["path"] == "digest"
    pinned = upload(client, publisher, tarball, "acme/app@sha256:" + "a" * 64)
    assert pinned.status_code == 400
    assert "pinned by a digest" in str(pinned.get_json())
    assert client.get("/v1/images", headers=publisher.headers).get_json()["items"] == []


@pytest.mark.parametrize("app_config", [{"TENANT_MAX_OFFLINE_IMAGE_BYTES": 1000}])
def test_a_tenants_offline_images_are_bounded(client, make_caller, saved, app_config):
    publisher = make_caller("acme", "publisher")
    answer = upload(client, publisher, retagged(saved, [REFERENCE]))
    assert answer.status_code == 409
    assert "CATALOG_TENANT_MAX_OFFLINE_IMAGE_BYTES" in answer.get_json()["detail"]
