"""Who may use a package and its name: a name held by another tenant answers alike whoever
holds it (hole 18); a redeploy of an earlier revision checks its packages as a draft deploy
does (hole 17); only what runs holds a package, drafts and templates naming a deleted one
show a problem and refuse to deploy (hole 19)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from catalog.models import Environment
from catalog.queue import DEPLOY_TASK
from tests.integration import test_environments_api as environments
from tests.integration import test_packages_api as packages
from tests.integration.conftest import package_bytes
from tests.integration.test_environments_api import deploy_directly
from tests.integration.test_packages_api import published, upload

# The same fixtures as those modules', by the same names.
acme, admin, world = packages.acme, packages.admin, environments.world


@pytest.fixture
def globex(make_caller):
    return make_caller("globex", "publisher")


# -- hole 18: a name another tenant holds ---------------------------------------------------


def test_a_foreign_name_answers_alike_whether_private_or_public(client, acme, globex, admin):
    published(client, acme, "org.acme.hidden")
    published(client, acme, "org.acme.shown")
    made_public = client.patch(
        "/v1/packages/org.acme.shown", json={"visibility": "public"}, headers=admin.headers
    )
    assert made_public.status_code == 200

    hidden = upload(client, globex, "org.acme.hidden", "2.0.0")
    shown = upload(client, globex, "org.acme.shown", "2.0.0")

    assert hidden.status_code == shown.status_code == 409
    assert hidden.get_json()["detail"] == "the name 'org.acme.hidden' is taken"
    assert shown.get_json() == {
        **hidden.get_json(),
        "detail": "the name 'org.acme.shown' is taken",
    }
    for body in (hidden.get_data(as_text=True), shown.get_data(as_text=True)):
        for telling in ("acme", "tenant", "private", "public", "belongs"):
            assert telling not in body.replace("org.acme.", ""), body


def test_a_foreign_name_hides_which_versions_it_has(client, acme, globex):
    published(client, acme, "org.acme.hidden", "1.0.0")

    same_version = upload(client, globex, "org.acme.hidden", "1.0.0")
    new_version = upload(client, globex, "org.acme.hidden", "9.9.9")

    assert same_version.status_code == new_version.status_code == 409
    assert same_version.get_json()["detail"] == new_version.get_json()["detail"]


# -- hole 17: from_revision re-checks the snapshot's packages -------------------------------


def redeploy(world, env: str, revision: int, caller=None):
    return world.client.post(
        f"/v1/environments/{env}/deployments",
        json={"from_revision": revision},
        headers=(caller or world.deployer).headers,
    )


def problems(response) -> list[tuple[str, str]]:
    assert response.status_code == 400, response.get_json()
    return [(e["path"], e["message"]) for e in response.get_json()["errors"]]


@pytest.fixture
def shop(world, app, published_tasks):
    """Environment `shop` of acme with app `db` (org.acme.db 8.0.0), deployed as revision 1."""
    world.create_env("shop")
    world.added(name="db", package="org.acme.db", version="8.0.0")
    deploy_directly(app, "shop")
    return world


def test_a_usable_snapshot_is_deployed_again(shop, published_tasks):
    response = redeploy(shop, "shop", 1)

    assert response.status_code == 202, response.get_json()
    assert response.get_json()["from_revision"] == 1
    assert [name for name, _ in published_tasks()] == [DEPLOY_TASK]


def test_a_snapshot_of_a_package_disabled_since_is_refused(shop, published_tasks):
    disabled = shop.client.patch(
        "/v1/packages/org.acme.db", json={"enabled": False}, headers=shop.admin.headers
    )
    assert disabled.status_code == 200

    response = redeploy(shop, "shop", 1)

    assert problems(response) == [("apps.db.package", "package 'org.acme.db' is disabled")]
    assert "revision 1 of 'shop' cannot be deployed again" in response.get_json()["detail"]
    assert shop.get("/environments/shop/deployments").get_json()["items"][0]["revision"] == 1
    assert published_tasks() == []


def test_a_snapshot_of_a_package_made_private_since_is_refused(world, app, published_tasks):
    made_public = world.client.patch(
        "/v1/packages/org.acme.db", json={"visibility": "public"}, headers=world.admin.headers
    )
    assert made_public.status_code == 200
    world.create_env("lab", caller=world.other)
    world.added("lab", caller=world.other, name="db", package="org.acme.db", version="8.0.0")
    deploy_directly(app, "lab")
    made_private = world.client.patch(
        "/v1/packages/org.acme.db", json={"visibility": "private"}, headers=world.admin.headers
    )
    assert made_private.status_code == 200

    response = redeploy(world, "lab", 1, caller=world.other)

    assert problems(response) == [("apps.db.package", "no package 'org.acme.db'")]
    assert published_tasks() == []


def test_a_snapshot_of_a_version_deleted_since_is_refused(shop, app, published_tasks):
    assert shop.patch("/environments/shop/apps/db", {"version": "8.1.0"}).status_code == 200
    deploy_directly(app, "shop", revision=2)
    deleted = shop.client.delete(
        "/v1/packages/org.acme.db/versions/8.0.0", headers=shop.publisher.headers
    )
    assert deleted.status_code == 204

    response = redeploy(shop, "shop", 1)

    assert problems(response) == [("apps.db.version", "org.acme.db 8.0.0 is no longer published")]


# -- hole 19: only what runs holds a package; drafts naming a deleted one say so -----------


def delete_package(world, name: str = "org.acme.db"):
    return world.client.delete(f"/v1/packages/{name}", headers=world.publisher.headers)


def public_db(world):
    made_public = world.client.patch(
        "/v1/packages/org.acme.db", json={"visibility": "public"}, headers=world.admin.headers
    )
    assert made_public.status_code == 200


def test_another_tenants_never_deployed_draft_does_not_hold_a_package(world):
    public_db(world)
    world.create_env("lab", caller=world.other)
    world.added("lab", caller=world.other, name="db", package="org.acme.db", version="8.0.0")

    assert delete_package(world).status_code == 204

    shown = world.get("/environments/lab", world.other).get_json()["apps"][0]
    assert shown["problem"] == "no package 'org.acme.db': it was deleted or is no longer available"
    assert shown["resolved_version"] is None
    refused = world.client.post(
        "/v1/environments/lab/deployments", json={}, headers=world.other.headers
    )
    assert problems(refused) == [("apps.db.package", "no package 'org.acme.db'")]


def test_an_own_draft_or_pin_does_not_hold_a_package_or_a_version(world):
    world.create_env("shop")
    world.added(name="db", package="org.acme.db", version="8.0.0")
    pub = world.publisher.headers

    pinned = world.client.delete("/v1/packages/org.acme.db/versions/8.0.0", headers=pub)

    assert pinned.status_code == 204
    assert world.get("/environments/shop").get_json()["apps"][0]["problem"] == (
        "no version of org.acme.db matches '8.0.0'"
    )
    assert delete_package(world).status_code == 204
    assert (
        world.get("/environments/shop/apps/db")
        .get_json()["problem"]
        .startswith("no package 'org.acme.db'")
    )
    assert world.delete("/environments/shop/apps/db").status_code == 204


def test_a_template_naming_a_deleted_package_shows_a_problem_and_makes_nothing(world):
    created = world.client.post(
        "/v1/templates",
        json={"name": "t", "apps": [{"name": "db", "package": "org.acme.db"}]},
        headers=world.deployer.headers,
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["apps"][0]["problem"] is None

    assert delete_package(world).status_code == 204

    shown = world.get("/templates/t").get_json()["apps"][0]
    assert shown["problem"].startswith("no package 'org.acme.db'")
    made = world.client.post(
        "/v1/templates/t/environments", json={"name": "shop2"}, headers=world.deployer.headers
    )
    assert problems(made) == [("apps.db.package", "no package 'org.acme.db'")]


def test_a_running_revision_and_an_in_flight_deployment_still_hold_it(world, app):
    public_db(world)
    world.create_env("lab", caller=world.other)
    world.added("lab", caller=world.other, name="db", package="org.acme.db", version="8.0.0")
    deploy_directly(app, "lab", status="running")
    with environments.session(app) as s:  # in flight, not yet the current revision
        env = s.scalar(select(Environment).where(Environment.name == "lab"))
        env.current_revision = None
        s.commit()

    refused = delete_package(world)

    assert refused.status_code == 409
    assert refused.get_json()["detail"] == (
        "package org.acme.db is used by 1 environment(s) of other tenants"
    )


# -- hole 14: text a package may not hold, refused at upload --------------------------------


def test_an_upload_with_unsafe_characters_is_refused_naming_each_place(client, app, acme):
    service = {
        "image": "catalog-test/busybox:latest",
        "environment": {"GREETING": "a\x00b"},
        "volumes": [{"name": "data", "path": "/data:/etc"}],
    }
    response = client.post(
        "/v1/packages",
        data=package_bytes("org.acme.odd", services={"web": service}, description="x\u202eexe.txt"),
        content_type="application/gzip",
        headers=acme.headers,
    )

    assert response.status_code in (400, 422), response.get_json()
    found = {e["path"]: e["message"] for e in response.get_json()["errors"]}
    assert found["services.web.environment.GREETING"] == "contains a NUL character (U+0000)"
    assert found["services.web.volumes[0].path"] == "a volume path may not contain ':'"
    assert "U+202E" in found["description"]
    assert client.get("/v1/packages/org.acme.odd", headers=acme.headers).status_code == 404


def test_a_member_name_with_a_bidi_control_is_refused(client, acme):
    response = client.post(
        "/v1/packages",
        data=package_bytes("org.acme.odd", files={"files/\u202egnp.sh": b"x"}),
        content_type="application/gzip",
        headers=acme.headers,
    )

    assert response.status_code in (400, 422), response.get_json()
    assert "bidirectional control character U+202E" in response.get_data(as_text=True)
