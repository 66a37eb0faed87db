"""Templates end to end on PostgreSQL: made from apps or from an environment, checked like a
deployment, secrets masked and kept, environments made from them with overrides, tenant
isolation and roles, and nothing written by a refused request."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from catalog.models import AuditEvent, Environment, Template
from catalog.services import environments as env_service
from tests.integration import test_environments_api as environments
from tests.integration.test_environments_api import (
    MASK,
    SECRET,
    audit_actions,
    audit_text,
    session,
    stored_parameters,
)

world = environments.world  # the environments tests' fixture: tenants, callers, packages

API_KEY = "a nested secret"
WEB = {
    "name": "web",
    "package": "org.acme.web",
    "version": "^1.0.0",
    "parameters": {"admin_password": SECRET, "site": {"title": "Shop", "api_key": API_KEY}},
    "bindings": {"db": "db"},
}
MASKED_WEB = {"admin_password": MASK, "site": {"title": "Shop", "api_key": MASK}}
DB = {"name": "db", "package": "org.acme.db", "version": "^8.0.0"}


def post(world, path, body, caller=None):
    return world.client.post(f"/v1{path}", json=body, headers=(caller or world.deployer).headers)


def created(world, body, caller=None) -> dict:
    response = post(world, "/templates", body, caller)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def counts(app) -> tuple[int, int, int]:
    """(templates, environments, audit events of changes)."""
    with session(app) as s:
        changes = select(func.count()).select_from(AuditEvent).where(AuditEvent.result == "ok")
        return (
            s.scalar(select(func.count()).select_from(Template)),
            s.scalar(select(func.count()).select_from(Environment)),
            s.scalar(changes),
        )


def errors(response) -> dict[str, str]:
    assert response.status_code == 400, response.get_json()
    assert response.mimetype == "application/problem+json"
    return {e["path"]: e["message"] for e in response.get_json()["errors"]}


# -- making templates ----------------------------------------------------------------------------


def test_a_template_from_apps_keeps_them_as_given_with_secrets_masked(world, app):
    response = post(
        world,
        "/templates",
        {"name": "shop", "description": "a shop", "settings": {"site_name": "S"},
         "apps": [WEB, DB]},
    )  # fmt: skip

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"].endswith("/v1/templates/shop")
    assert body["name"] == "shop" and body["tenant"] == "acme" and body["source"] is None
    assert body["description"] == "a shop"
    assert body["settings"] == {"site_name": "S"}
    assert body["apps"] == [
        {**WEB, "parameters": MASKED_WEB, "problem": None},
        {**DB, "parameters": {}, "bindings": {}, "problem": None},
    ]
    assert world.get("/templates/shop").get_json() == body
    assert world.get(f"/templates/{body['id']}", world.viewer).get_json() == body
    assert audit_actions(app)[-1] == "template.create"
    listed = str(world.get("/templates").get_json())
    assert SECRET not in listed and API_KEY not in listed
    assert SECRET not in audit_text(app) and API_KEY not in audit_text(app)


def test_secrets_stay_masked_after_the_package_that_marked_them_is_deleted(world):
    solo = environments.WEB_PARAMETERS
    environments.publish(world.client, world.publisher, "org.acme.solo", "1.0.0", parameters=solo)
    created(world, {"name": "t", "apps": [{**WEB, "bindings": {}, "package": "org.acme.solo"}]})
    deleted = world.delete("/packages/org.acme.solo", world.publisher)
    assert deleted.status_code == 204, deleted.get_json()

    for shown in (world.get("/templates/t"), world.get("/templates", world.viewer)):
        assert shown.status_code == 200
        assert SECRET not in shown.get_data(as_text=True)
        assert API_KEY not in shown.get_data(as_text=True)
    assert world.get("/templates/t").get_json()["apps"][0]["parameters"] == MASKED_WEB


def test_a_template_from_an_environment_copies_its_draft_and_settings(world):
    world.shop_with_db()
    world.patch("/environments/shop", {"settings": {"site_name": "Shop"}})

    body = created(world, {"name": "shop-tpl", "environment": "shop"})

    assert body["source"] == "shop"
    assert body["settings"] == {"site_name": "Shop"}
    web = next(a for a in body["apps"] if a["name"] == "web")
    assert web["version"] == "^1.0.0" and web["bindings"] == {"db": "db"}
    assert web["parameters"]["admin_password"] == MASK
    assert [a["name"] for a in body["apps"]] == ["db", "web"]


@pytest.mark.parametrize(
    ("apps", "path", "message"),
    [
        ([{**DB, "package": "org.acme.gone"}], "apps.db.package", "no package"),
        ([{**DB, "version": "^7.0.0"}], "apps.db.version", "no version"),
        ([DB, {**WEB, "parameters": {"admin_password": "short"}}],
         "apps.web.parameters.admin_password", "at least 12"),
        ([{**WEB, "bindings": {}}], "apps.web.bindings.db", "required"),
        ([{**WEB, "bindings": {"db": "nowhere"}}], "apps.web.bindings.db", "nowhere"),
        ([DB, {**WEB, "parameters": {"admin_password": MASK}}],
         "apps.web.parameters.admin_password", "no stored secret"),
    ],
)  # fmt: skip
def test_a_template_that_could_not_be_deployed_is_refused_and_nothing_is_written(
    world, app, apps, path, message
):
    before = counts(app)

    found = errors(post(world, "/templates", {"name": "shop", "apps": apps}))

    assert path in found, found
    assert message in found[path]
    assert counts(app) == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "shop"},
        {"name": "shop", "apps": [DB], "environment": "shop"},
        {"name": "shop", "apps": [DB, DB]},
        {"name": "Shop!", "apps": [DB]},
        {"name": "shop", "apps": []},
    ],
)
def test_a_malformed_template_is_400(world, app, body):
    world.create_env("shop")
    before = counts(app)

    assert errors(post(world, "/templates", body))
    assert counts(app) == before


def test_an_environment_without_apps_makes_no_template(world):
    world.create_env("shop")

    assert "environment" in errors(post(world, "/templates", {"name": "t", "environment": "shop"}))


def test_a_template_name_is_unique_in_its_tenant_only(world, make_caller):
    environments.publish(world.client, make_caller("globex", "publisher"), "org.globex.db", "1.0.0")
    created(world, {"name": "shop", "apps": [DB]})

    again = post(world, "/templates", {"name": "shop", "apps": [DB]})
    elsewhere = post(
        world, "/templates", {"name": "shop", "apps": [{"name": "db", "package": "org.globex.db"}]},
        world.other,
    )  # fmt: skip

    assert again.status_code == 409
    assert "exists already" in again.get_json()["detail"]
    assert elsewhere.status_code == 201, elsewhere.get_json()


# -- environments from templates -----------------------------------------------------------------


def test_an_environment_from_a_template_gets_its_apps_settings_and_secrets(world, app):
    world.shop_with_db()
    world.patch("/environments/shop", {"settings": {"site_name": "Shop", "theme": "dark"}})
    created(world, {"name": "shop-tpl", "description": "shops", "environment": "shop"})

    response = post(
        world,
        "/templates/shop-tpl/environments",
        {"name": "shop2", "settings": {"site_name": "Second"},
         "parameters": {"web": {"replicas": 2}}},
    )  # fmt: skip

    assert response.status_code == 201, response.get_json()
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"].endswith("/v1/environments/shop2")
    env = response.get_json()
    assert env["status"] == "new" and env["has_pending_changes"] is True
    assert env["description"] == "shops"
    assert env["settings"] == {"site_name": "Second", "theme": "dark"}
    apps = {a["name"]: a for a in env["apps"]}
    assert apps["web"]["version"] == "^1.0.0" and apps["web"]["resolved_version"] == "1.1.0"
    assert apps["web"]["bindings"] == {"db": "db"}
    assert apps["web"]["parameters"]["admin_password"] == MASK
    assert apps["web"]["parameters"]["replicas"] == 2
    # The secret came from the template; the draft can be deployed as it is.
    assert stored_parameters(app, "shop2", "web")["admin_password"] == SECRET
    with session(app) as s:
        shop2 = s.scalar(select(Environment).where(Environment.name == "shop2"))
        assert env_service.check_deployable(s, shop2) == []
    with session(app) as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert last.action == "environment.create"
    assert last.detail == {"name": "shop2", "host": None, "template": "shop-tpl"}


def test_a_masked_secret_keeps_the_templates_value_and_a_new_one_replaces_it(world, app):
    created(world, {"name": "t", "apps": [DB, WEB]})
    new_secret = "another long enough secret"

    def make(name: str, password: str):
        body = {"name": name, "parameters": {"web": {"admin_password": password}}}
        return post(world, "/templates/t/environments", body)

    kept, replaced = make("kept", MASK), make("replaced", new_secret)

    assert kept.status_code == replaced.status_code == 201
    assert stored_parameters(app, "kept", "web")["admin_password"] == SECRET
    assert stored_parameters(app, "replaced", "web")["admin_password"] == new_secret


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (
            {"parameters": {"web": {"admin_password": "short"}}},
            "apps.web.parameters.admin_password",
        ),
        ({"parameters": {"nope": {"x": 1}}}, "parameters.nope"),
        ({"parameters": {"web": {"replicas": 9}}}, "apps.web.parameters.replicas"),
    ],
)
def test_an_environment_the_template_and_overrides_cannot_make_is_refused_whole(
    world, app, body, path
):
    created(world, {"name": "t", "apps": [DB, WEB]})
    before = counts(app)

    assert path in errors(post(world, "/templates/t/environments", {"name": "shop2", **body}))
    assert counts(app) == before
    assert world.get("/environments/shop2").status_code == 404


def test_a_template_whose_package_went_away_makes_no_environment(world, app):
    created(world, {"name": "t", "apps": [DB]})
    patched = world.patch("/packages/org.acme.db", {"enabled": False}, world.publisher)
    assert patched.status_code == 200, patched.get_json()
    before = counts(app)

    found = errors(post(world, "/templates/t/environments", {"name": "shop2"}))

    assert "disabled" in found["apps.db.package"]
    assert counts(app) == before


def test_an_admin_makes_no_environment_from_another_tenants_public_template(world, app):
    for name in ("org.acme.web", "org.acme.db"):
        response = world.patch(f"/packages/{name}", {"visibility": "public"}, world.admin)
        assert response.status_code == 200, response.get_json()
    created(world, {"name": "t", "apps": [DB, WEB]})
    before = counts(app)

    refused = post(world, "/templates/t/environments", {"name": "copy"}, world.admin)

    assert refused.status_code == 409
    assert "belongs to tenant 'acme'" in refused.get_json()["detail"]
    assert counts(app) == before


def test_an_environment_name_taken_is_409(world):
    world.create_env("shop")
    created(world, {"name": "t", "apps": [DB]})

    assert post(world, "/templates/t/environments", {"name": "shop"}).status_code == 409


# -- who may do what ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "show", "make_env", "delete"),
    [
        ("deployer", 200, 201, 204),
        ("viewer", 200, 403, 403),
        ("other", 404, 404, 404),
        ("other_viewer", 404, 404, 404),
        # An environment made from a template is the template's tenant's: an admin makes
        # none from another tenant's (its secrets would move to the admin's tenant).
        ("admin", 200, 409, 204),
        ("anonymous", 401, 401, 401),
    ],
)
def test_template_routes_by_caller(world, caller, show, make_env, delete):
    template = created(world, {"name": "t", "apps": [DB]})
    headers = {} if caller == "anonymous" else getattr(world, caller).headers

    def call(method, path, body=None):
        return world.client.open(f"/v1{path}", method=method, json=body, headers=headers)

    for ref in ("t", template["id"]):
        assert call("GET", f"/templates/{ref}").status_code == show
    listed = call("GET", "/templates")
    if caller == "anonymous":
        assert listed.status_code == 401
    else:
        visible = [] if caller.startswith("other") else ["t"]
        assert [t["name"] for t in listed.get_json()["items"]] == visible
    assert call("POST", "/templates/t/environments", {"name": "e1"}).status_code == make_env
    assert call("DELETE", "/templates/t").status_code == delete
    assert (world.get("/templates/t").status_code == 404) == (delete == 204)


def test_a_viewer_makes_no_template(world, app):
    world.shop_with_db()
    before = counts(app)

    response = post(world, "/templates", {"name": "t", "environment": "shop"}, world.viewer)

    assert response.status_code == 403
    assert counts(app) == before


def test_another_tenants_environment_makes_no_template(world):
    world.shop_with_db()

    response = post(world, "/templates", {"name": "t", "environment": "shop"}, world.other)

    assert errors(response) == {"environment": "no environment 'shop'"}


def test_another_tenants_template_answers_exactly_like_a_missing_one(world):
    created(world, {"name": "t", "apps": [DB]})

    for method, suffix, body in (
        ("GET", "", None),
        ("DELETE", "", None),
        ("POST", "/environments", {"name": "e1"}),
    ):
        hidden = world.client.open(
            f"/v1/templates/t{suffix}", method=method, json=body, headers=world.other.headers
        )
        missing = world.client.open(
            f"/v1/templates/x{suffix}", method=method, json=body, headers=world.other.headers
        )
        assert hidden.status_code == missing.status_code == 404
        assert hidden.get_json()["detail"] == "no template 't'"
        assert missing.get_json()["detail"] == "no template 'x'"


def test_deleting_a_template_leaves_the_environments_made_from_it(world, app):
    created(world, {"name": "t", "apps": [DB]})
    assert post(world, "/templates/t/environments", {"name": "e1"}).status_code == 201

    assert world.delete("/templates/t").status_code == 204

    assert world.get("/templates/t").status_code == 404
    assert world.get("/environments/e1").status_code == 200
    assert audit_actions(app)[-1] == "template.delete"


def test_templates_are_listed_by_name_a_page_at_a_time(world):
    for name in ("c", "a", "b"):
        created(world, {"name": name, "apps": [DB]})

    first = world.get("/templates?limit=2").get_json()
    second = world.get(f"/templates?limit=2&cursor={first['next_cursor']}").get_json()

    assert [t["name"] for t in first["items"]] == ["a", "b"]
    assert [t["name"] for t in second["items"]] == ["c"]
    assert second["next_cursor"] is None
