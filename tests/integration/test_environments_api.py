"""The environments API end to end on PostgreSQL: environments, draft apps, parameters and
secrets, bindings, ETags, pending changes, app status and endpoints, tenant isolation,
teardown hooks, and packages refused deletion while an environment uses them."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from catalog import settings_of
from catalog.errors import ValidationFailed
from catalog.models import App, AuditEvent, ContainerRecord, Deployment, Environment, HostPort
from catalog.queue import TEARDOWN_TASK
from catalog.secretbox import open_all
from catalog.services import environments as env_service
from tests.integration.conftest import package_bytes

SECRET = "correct horse battery staple"
MASK = "********"

WEB_PARAMETERS = {
    "type": "object",
    "required": ["admin_password"],
    "properties": {
        "admin_password": {"type": "string", "minLength": 12, "x-secret": True},
        "replicas": {"type": "integer", "default": 1, "minimum": 1, "maximum": 5},
        "site": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "default": "demo"},
                "api_key": {"type": "string", "x-secret": True},
            },
        },
    },
}
DB_PARAMETERS = {
    "type": "object",
    "properties": {"root_password": {"type": "string", "x-secret": True, "default": "s3cr3t-root"}},
}
WEB_BINDINGS = {"db": {"package": "org.acme.db", "version": ">=8.0.0 <9.0.0", "required": True}}
PEER_BINDINGS = {"peer": {"package": "org.acme.peer", "required": False}}


# -- helpers -------------------------------------------------------------------------------------


def session(app):
    return app.extensions["catalog"]["sessionmaker"]()


def publish(client, caller, name, version, **extra) -> None:
    response = client.post(
        "/v1/packages",
        data=package_bytes(name, version, **extra),
        content_type="application/gzip",
        headers=caller.headers,
    )
    assert response.status_code == 201, response.get_json()


def paths(response) -> list[str]:
    assert response.status_code == 400, response.get_json()
    assert response.mimetype == "application/problem+json"
    return [e["path"] for e in response.get_json()["errors"]]


def audit_actions(app, result: str = "ok") -> list[str]:
    """The actions of the audit events with `result` (ok: the changes made), oldest first."""
    with session(app) as s:
        query = select(AuditEvent.action).where(AuditEvent.result == result)
        return list(s.scalars(query.order_by(AuditEvent.id)))


def audit_text(app) -> str:
    with session(app) as s:
        return json.dumps([e.detail for e in s.scalars(select(AuditEvent))])


def stored_app(app, env: str, name: str) -> App:
    with session(app) as s:
        return s.scalar(
            select(App).join(Environment).where(Environment.name == env, App.name == name)
        )


def stored_parameters(app, env: str, name: str) -> dict:
    """An app's stored parameters with its secrets decrypted."""
    box = app.extensions["catalog"]["sessionmaker"].kw["info"]["secrets"]
    return open_all(stored_app(app, env, name).parameters, box)


@dataclass
class World:
    client: object
    app: object
    publisher: object  # acme, owns the packages
    deployer: object  # acme
    viewer: object  # acme
    other: object  # globex deployer
    other_viewer: object  # globex viewer
    admin: object

    def create_env(self, name="shop", caller=None, **body):
        response = self.client.post(
            "/v1/environments",
            json={"name": name, **body},
            headers=(caller or self.deployer).headers,
        )
        assert response.status_code == 201, response.get_json()
        return response

    def add_app(self, env="shop", caller=None, headers=None, **body):
        return self.client.post(
            f"/v1/environments/{env}/apps",
            json=body,
            headers={**(caller or self.deployer).headers, **(headers or {})},
        )

    def added(self, env="shop", **body) -> dict:
        response = self.add_app(env, **body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def get(self, path, caller=None):
        return self.client.get(f"/v1{path}", headers=(caller or self.deployer).headers)

    def patch(self, path, body, caller=None, headers=None):
        return self.client.patch(
            f"/v1{path}",
            json=body,
            headers={**(caller or self.deployer).headers, **(headers or {})},
        )

    def delete(self, path, caller=None, headers=None):
        return self.client.delete(
            f"/v1{path}", headers={**(caller or self.deployer).headers, **(headers or {})}
        )

    def shop_with_db(self):
        """Environment `shop` with `db` (org.acme.db 8.x) and `web` (1.x) bound to it."""
        self.create_env()
        self.added(name="db", package="org.acme.db", version="^8.0.0")
        return self.added(
            name="web",
            package="org.acme.web",
            version="^1.0.0",
            parameters={"admin_password": SECRET},
            bindings={"db": "db"},
        )


@pytest.fixture
def world(client, app, make_caller) -> World:
    world = World(
        client,
        app,
        publisher=make_caller("acme", "publisher"),
        deployer=make_caller("acme", "deployer"),
        viewer=make_caller("acme", "viewer"),
        other=make_caller("globex", "deployer"),
        other_viewer=make_caller("globex", "viewer"),
        admin=make_caller("admin", "admin"),
    )
    pub = world.publisher
    for version in ("1.0.0", "1.1.0"):
        publish(
            client, pub, "org.acme.web", version, parameters=WEB_PARAMETERS, bindings=WEB_BINDINGS
        )
    web2 = {**WEB_PARAMETERS, "required": ["admin_password", "domain"]}
    web2["properties"] = {**WEB_PARAMETERS["properties"], "domain": {"type": "string"}}
    # A pre-release: only picked when asked for by name.
    publish(client, pub, "org.acme.web", "2.0.0-beta.1", parameters=web2, bindings=WEB_BINDINGS)
    for version in ("8.0.0", "8.1.0", "9.0.0"):
        publish(client, pub, "org.acme.db", version, parameters=DB_PARAMETERS)
    publish(client, pub, "org.acme.peer", "1.0.0", bindings=PEER_BINDINGS)
    return world


# -- environments --------------------------------------------------------------------------------


def test_create_environment_answers_201_with_the_new_environment_and_its_etag(world, app):
    response = world.create_env(
        "shop", description="the shop", settings={"site_name": "Shop", "debug": False}
    )

    body = response.get_json()
    assert response.headers["ETag"] == '"1"'
    assert body["name"] == "shop"
    assert body["description"] == "the shop"
    assert body["status"] == "new"
    assert body["has_pending_changes"] is False
    assert body["current_revision"] is None
    assert body["settings"] == {"site_name": "Shop", "debug": False}
    assert body["apps"] == []
    assert body["id"] and body["created_at"]
    assert audit_actions(app)[-1] == "environment.create"

    shown = world.get("/environments/shop")
    assert shown.status_code == 200
    assert shown.headers["ETag"] == '"1"'
    assert shown.get_json() == body


def test_a_duplicate_name_is_409_in_the_tenant_but_free_in_another(world):
    world.create_env("shop")

    again = world.client.post(
        "/v1/environments", json={"name": "shop"}, headers=world.deployer.headers
    )
    elsewhere = world.client.post(
        "/v1/environments", json={"name": "shop"}, headers=world.other.headers
    )

    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    assert elsewhere.status_code == 201


def test_create_lists_every_invalid_field(world):
    response = world.client.post(
        "/v1/environments",
        json={"name": "Not_A-Label-", "settings": "x", "description": 5, "color": "red"},
        headers=world.deployer.headers,
    )

    assert sorted(paths(response)) == ["color", "description", "name", "settings"]


def test_viewer_reads_but_every_write_is_403(world):
    world.shop_with_db()
    v = world.viewer

    assert world.get("/environments", v).status_code == 200
    assert world.get("/environments/shop", v).status_code == 200
    assert world.get("/environments/shop/apps/web", v).status_code == 200
    writes = [
        world.client.post("/v1/environments", json={"name": "mine"}, headers=v.headers),
        world.patch("/environments/shop", {"description": "x"}, v),
        world.delete("/environments/shop", v),
        world.add_app(caller=v, name="db2", package="org.acme.db"),
        world.patch("/environments/shop/apps/web", {"version": "1.0.0"}, v),
        world.delete("/environments/shop/apps/web", v),
    ]
    assert [r.status_code for r in writes] == [403] * 6
    assert world.get("/environments/shop").headers["ETag"] == '"3"'


def test_list_is_keyset_paginated_by_name_and_shows_only_the_tenants_own(world):
    for name in ("delta", "alpha", "echo", "charlie", "bravo"):
        world.create_env(name)
    world.create_env("aaa-globex", caller=world.other)

    names, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = world.client.get(
            "/v1/environments", query_string=query, headers=world.viewer.headers
        )
        assert response.status_code == 200
        body = response.get_json()
        assert len(body["items"]) <= 2
        names += [item["name"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert names == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert pages == 3
    everything = world.get("/environments?limit=200", world.admin).get_json()
    assert [i["name"] for i in everything["items"]] == [
        "aaa-globex", "alpha", "bravo", "charlie", "delta", "echo",
    ]  # fmt: skip
    assert everything["next_cursor"] is None
    assert {i["tenant"] for i in everything["items"]} == {"acme", "globex"}
    assert paths(world.get("/environments?cursor=garbage")) == ["cursor"]
    assert paths(world.get("/environments?limit=0")) == ["limit"]
    assert paths(world.get("/environments?limit=201")) == ["limit"]


def test_rename_and_description_and_duplicate_rename(world):
    world.create_env("shop")
    world.create_env("taken")

    renamed = world.patch("/environments/shop", {"name": "store", "description": "new"})
    clash = world.patch("/environments/store", {"name": "taken"})

    assert renamed.status_code == 200
    assert renamed.get_json()["name"] == "store"
    assert renamed.get_json()["description"] == "new"
    assert renamed.headers["ETag"] == '"2"'
    assert world.get("/environments/shop").status_code == 404
    assert world.get("/environments/store").status_code == 200
    assert clash.status_code == 409
    assert paths(world.patch("/environments/store", {"name": "UPPER", "settings": []})) == [
        "name",
        "settings",
    ]


# -- apps: versions, parameters, secrets -----------------------------------------------------


def test_add_app_resolves_the_newest_release_applies_defaults_and_masks_secrets(world, app):
    world.create_env("shop")
    response = world.add_app(
        name="web",
        package="org.acme.web",
        version="^1.0.0",
        parameters={"admin_password": SECRET, "site": {"api_key": "key-123"}},
    )

    assert response.status_code == 201, response.get_json()
    assert response.headers["ETag"] == '"2"'
    body = response.get_json()
    assert body["name"] == "web"
    assert body["package"] == "org.acme.web"
    assert body["version"] == "^1.0.0"
    assert body["resolved_version"] == "1.1.0"
    assert body["deployed_version"] is None
    assert body["status"] == "pending"
    assert body["endpoints"] == []
    assert body["bindings"] == {}
    assert body["parameters"] == {
        "admin_password": MASK,
        "replicas": 1,
        "site": {"title": "demo", "api_key": MASK},
    }
    stored = stored_app(app, "shop", "web")
    # At rest the secrets are Fernet tokens: the row holds neither of them in clear.
    assert SECRET not in json.dumps(stored.parameters)
    assert "key-123" not in json.dumps(stored.parameters)
    assert set(stored.parameters["admin_password"]) == {"$secret"}
    assert stored.parameters["replicas"] == 1  # what is not secret stays as it is
    assert stored_parameters(app, "shop", "web")["admin_password"] == SECRET
    assert stored_parameters(app, "shop", "web")["site"]["api_key"] == "key-123"
    assert stored.version == "^1.0.0"
    assert audit_actions(app)[-1] == "app.create"

    # Masked in every response: the app, the environment, the list.
    shown_app = world.get("/environments/shop/apps/web")
    shown_env = world.get("/environments/shop")
    listed = world.get("/environments")
    for text in (shown_app.get_data(True), shown_env.get_data(True), listed.get_data(True)):
        assert SECRET not in text and "key-123" not in text
    assert shown_app.get_json() == body
    assert shown_app.headers["ETag"] == '"2"'
    assert shown_env.get_json()["apps"] == [body]
    assert listed.get_json()["items"][0]["apps"] == [body]
    assert SECRET not in audit_text(app) and "key-123" not in audit_text(app)


def test_a_secret_default_is_masked_too(world):
    world.create_env("shop")

    body = world.added(name="db", package="org.acme.db")

    assert body["parameters"] == {"root_password": MASK}
    assert body["resolved_version"] == "9.0.0"
    assert body["version"] is None


def test_version_default_skips_yanked_and_exact_pins_reach_yanked(world):
    world.create_env("shop")
    yank = world.client.patch(
        "/v1/packages/org.acme.db/versions/9.0.0",
        json={"yanked": True},
        headers=world.publisher.headers,
    )
    assert yank.status_code == 200

    newest = world.added(name="db", package="org.acme.db")
    pinned = world.added(name="db-old", package="org.acme.db", version="9.0.0")
    ranged = world.added(name="db-range", package="org.acme.db", version=">=8.0.0")

    assert newest["resolved_version"] == "8.1.0"
    assert pinned["resolved_version"] == "9.0.0"
    assert ranged["resolved_version"] == "8.1.0"


def test_a_version_nothing_matches_or_no_version_at_all_is_400_on_version(world):
    world.create_env("shop")

    unmatched = world.add_app(name="db", package="org.acme.db", version="^10.0.0")
    invalid = world.add_app(name="db", package="org.acme.db", version="latest")

    assert paths(unmatched) == ["version"]
    assert "^10.0.0" in unmatched.get_json()["errors"][0]["message"]
    assert paths(invalid) == ["version"]
    assert world.get("/environments/shop").get_json()["apps"] == []


def test_parameter_problems_are_listed_each_with_its_path_and_never_echo_values(world):
    world.create_env("shop")

    response = world.add_app(
        name="web",
        package="org.acme.web",
        version="1.0.0",
        parameters={"admin_password": "hunter2", "replicas": 9, "site": {"title": 5}},
    )

    assert paths(response) == [
        "parameters.admin_password",
        "parameters.replicas",
        "parameters.site.title",
    ]
    assert "hunter2" not in response.get_data(as_text=True)
    missing = world.add_app(name="web", package="org.acme.web", version="1.0.0")
    assert paths(missing) == ["parameters.admin_password"]
    assert "hunter2" not in audit_text(world.app)


def test_request_shape_problems_are_listed_each_with_its_path(world):
    world.create_env("shop")

    response = world.add_app(
        name="-web", package="noDots", parameters=[], bindings={"db": "Not A Name"}, extra=1
    )

    assert sorted(paths(response)) == [
        "bindings.db.value",
        "extra",
        "name",
        "package",
        "parameters",
    ]


def test_the_package_must_be_visible_and_enabled_and_an_application(world, app):
    world.create_env("shop")
    # A private package of another tenant (the admin's): acme cannot see it.
    publish(world.client, world.admin, "org.admin.hidden", "1.0.0")
    publish(world.client, world.publisher, "org.acme.lib", "1.0.0", type="library", services={})
    publish(world.client, world.publisher, "org.acme.off", "1.0.0")
    disabled = world.client.patch(
        "/v1/packages/org.acme.off", json={"enabled": False}, headers=world.publisher.headers
    )
    assert disabled.status_code == 200

    hidden = world.add_app(name="x", package="org.admin.hidden")
    missing = world.add_app(name="x", package="org.nowhere.gone")
    library = world.add_app(name="x", package="org.acme.lib")
    off = world.add_app(name="x", package="org.acme.off")

    for response in (hidden, missing, library, off):
        assert paths(response) == ["package"]
    assert hidden.get_data(as_text=True) == missing.get_data(as_text=True).replace(
        "org.nowhere.gone", "org.admin.hidden"
    )
    assert "library" in library.get_json()["errors"][0]["message"]
    assert "disabled" in off.get_json()["errors"][0]["message"]


def test_a_duplicate_app_name_is_409_and_a_missing_app_404(world):
    world.create_env("shop")
    world.added(name="db", package="org.acme.db")

    assert world.add_app(name="db", package="org.acme.db").status_code == 409
    for response in (
        world.get("/environments/shop/apps/nope"),
        world.patch("/environments/shop/apps/nope", {"version": "8.0.0"}),
        world.delete("/environments/shop/apps/nope"),
    ):
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"


def test_patch_replaces_parameters_and_a_masked_value_keeps_the_stored_secret(world, app):
    world.shop_with_db()

    kept = world.patch(
        "/environments/shop/apps/web",
        {"parameters": {"admin_password": MASK, "replicas": 3}},
    )

    assert kept.status_code == 200, kept.get_json()
    assert kept.get_json()["parameters"] == {
        "admin_password": MASK,
        "replicas": 3,
        "site": {"title": "demo"},
    }
    assert kept.headers["ETag"] == '"4"'
    assert stored_parameters(app, "shop", "web")["admin_password"] == SECRET

    changed = world.patch(
        "/environments/shop/apps/web", {"parameters": {"admin_password": "another long secret"}}
    )
    assert changed.status_code == 200
    assert changed.get_json()["parameters"]["replicas"] == 1  # replaced whole: default again
    assert stored_parameters(app, "shop", "web")["admin_password"] == "another long secret"

    unkept = world.patch(
        "/environments/shop/apps/web",
        {"parameters": {"admin_password": "another long secret", "site": {"api_key": MASK}}},
    )
    assert paths(unkept) == ["parameters.site.api_key"]
    assert "another long secret" not in audit_text(app)
    assert audit_actions(app)[-2:] == ["app.update", "app.update"]


def test_patch_version_revalidates_parameters_and_the_binders_ranges(world):
    world.shop_with_db()

    to_two = world.patch("/environments/shop/apps/web", {"version": "2.0.0-beta.1"})
    db_nine = world.patch("/environments/shop/apps/db", {"version": "9.0.0"})
    with_domain = world.patch(
        "/environments/shop/apps/web",
        {
            "version": "2.0.0-beta.1",
            "parameters": {"admin_password": MASK, "domain": "shop.example"},
        },
    )
    back_to_newest = world.patch("/environments/shop/apps/web", {"version": None})

    assert paths(to_two) == ["parameters.domain"]
    assert paths(db_nine) == ["version"]
    assert "'web'" in db_nine.get_json()["errors"][0]["message"]
    assert with_domain.status_code == 200, with_domain.get_json()
    assert with_domain.get_json()["resolved_version"] == "2.0.0-beta.1"
    assert back_to_newest.status_code == 200
    assert back_to_newest.get_json()["version"] is None
    assert back_to_newest.get_json()["resolved_version"] == "1.1.0"  # releases before betas


# -- apps: bindings ------------------------------------------------------------------------------


def test_binding_rules_each_with_its_path(world):
    world.create_env("shop")
    world.added(name="db9", package="org.acme.db", version="9.0.0")
    world.added(name="other-web", package="org.acme.web", parameters={"admin_password": SECRET})

    unknown = world.add_app(
        name="web",
        package="org.acme.web",
        parameters={"admin_password": SECRET},
        bindings={"cache": "db9"},
    )
    missing = world.add_app(
        name="web",
        package="org.acme.web",
        parameters={"admin_password": SECRET},
        bindings={"db": "nowhere"},
    )
    wrong_package = world.add_app(
        name="web",
        package="org.acme.web",
        parameters={"admin_password": SECRET},
        bindings={"db": "other-web"},
    )
    wrong_version = world.add_app(
        name="web",
        package="org.acme.web",
        parameters={"admin_password": SECRET},
        bindings={"db": "db9"},
    )
    everything = world.add_app(
        name="web", package="org.acme.web", parameters={"replicas": 0}, bindings={"cache": "x"}
    )

    assert paths(unknown) == ["bindings.cache"]
    assert "no binding slot 'cache'" in unknown.get_json()["errors"][0]["message"]
    assert paths(missing) == ["bindings.db"]
    assert "no app 'nowhere'" in missing.get_json()["errors"][0]["message"]
    assert paths(wrong_package) == ["bindings.db"]
    assert "org.acme.db" in wrong_package.get_json()["errors"][0]["message"]
    assert paths(wrong_version) == ["bindings.db"]
    assert ">=8.0.0 <9.0.0" in wrong_version.get_json()["errors"][0]["message"]
    assert paths(everything) == [
        "parameters.admin_password",
        "parameters.replicas",
        "bindings.cache",
    ]


def test_a_required_slot_may_stay_unbound_in_the_draft(world):
    world.create_env("shop")

    body = world.added(name="web", package="org.acme.web", parameters={"admin_password": SECRET})

    assert body["bindings"] == {}


def test_binding_cycles_and_self_bindings_are_refused(world):
    world.create_env("ring")
    world.added("ring", name="a", package="org.acme.peer")
    world.added("ring", name="b", package="org.acme.peer", bindings={"peer": "a"})
    world.added("ring", name="c", package="org.acme.peer", bindings={"peer": "b"})

    cycle = world.patch("/environments/ring/apps/a", {"bindings": {"peer": "c"}})
    itself = world.add_app("ring", name="d", package="org.acme.peer", bindings={"peer": "d"})

    assert paths(cycle) == ["bindings.peer"]
    assert cycle.get_json()["errors"][0]["message"] == "binding cycle: a -> c -> b -> a"
    assert paths(itself) == ["bindings.peer"]
    assert "itself" in itself.get_json()["errors"][0]["message"]
    assert stored_app(world.app, "ring", "a").bindings == {}


def test_deleting_a_bound_app_is_409_naming_the_binder(world, app):
    world.shop_with_db()

    refused = world.delete("/environments/shop/apps/db")
    unbound = world.patch("/environments/shop/apps/web", {"bindings": {}})
    deleted = world.delete("/environments/shop/apps/db")

    assert refused.status_code == 409
    assert "'web'" in refused.get_json()["detail"]
    assert unbound.status_code == 200
    assert deleted.status_code == 204
    assert deleted.headers["ETag"] == '"5"'
    assert world.get("/environments/shop/apps/db").status_code == 404
    assert [a["name"] for a in world.get("/environments/shop").get_json()["apps"]] == ["web"]
    assert audit_actions(app)[-1] == "app.delete"


# -- audit ---------------------------------------------------------------------------------------


def test_each_successful_change_writes_one_audit_event_and_a_refusal_its_own(world, app):
    before = len(audit_actions(app))

    world.shop_with_db()
    assert world.patch("/environments/shop", {"description": "d"}).status_code == 200
    kept = world.patch("/environments/shop/apps/web", {"parameters": {"admin_password": MASK}})
    assert kept.status_code == 200
    assert world.patch("/environments/shop/apps/web", {"bindings": {}}).status_code == 200
    assert world.delete("/environments/shop/apps/db").status_code == 204
    refusals = [
        world.add_app(name="bad", package="org.acme.db", version="^10.0.0"),  # 400
        world.patch("/environments/shop", {"description": "x"}, world.viewer),  # 403
        world.patch("/environments/shop", {"description": "x"}, world.other),  # 404
        world.add_app(name="web", package="org.acme.db"),  # 409
    ]
    assert world.delete("/environments/shop").status_code == 202

    assert [r.status_code for r in refusals] == [400, 403, 404, 409]
    assert audit_actions(app)[before:] == [
        "environment.create",
        "app.create",
        "app.create",
        "environment.update",
        "app.update",
        "app.update",
        "app.delete",
        "environment.delete",
    ]
    # The 403 and the 409 are refusals on the trail; a 400 and a 404 are not.
    assert audit_actions(app, "forbidden") == ["environments.update_environment"]
    assert audit_actions(app, "conflict") == ["environments.add_app"]
    assert SECRET not in audit_text(app)


# -- ETag and If-Match ---------------------------------------------------------------------------


def test_every_draft_edit_bumps_the_etag_and_a_stale_if_match_is_412(world, app):
    world.create_env("shop")
    stale = {"If-Match": '"1"'}
    etags = []

    etags.append(world.patch("/environments/shop", {"settings": {"a": 1}}, headers=stale))
    etags.append(world.add_app(name="db", package="org.acme.db", headers={"If-Match": '"2"'}))
    etags.append(world.patch("/environments/shop/apps/db", {"version": "8.0.0"}))
    etags.append(world.delete("/environments/shop/apps/db", headers={"If-Match": "*"}))

    assert [r.status_code for r in etags] == [200, 201, 200, 204]
    assert [r.headers["ETag"] for r in etags] == ['"2"', '"3"', '"4"', '"5"']
    before = audit_actions(app)

    refused = [
        world.patch("/environments/shop", {"settings": {"b": 2}}, headers=stale),
        world.add_app(name="db", package="org.acme.db", headers=stale),
        world.delete("/environments/shop", headers=stale),
        world.add_app(name="db", package="org.acme.db", headers={"If-Match": 'W/"5"'}),
    ]
    world.added(name="db", package="org.acme.db")
    refused += [
        world.patch("/environments/shop/apps/db", {"version": "8.0.0"}, headers=stale),
        world.delete("/environments/shop/apps/db", headers=stale),
    ]

    for response in refused:
        assert response.status_code == 412
        assert response.mimetype == "application/problem+json"
    assert '"5"' in refused[0].get_json()["detail"]
    assert refused[0].headers["ETag"] == '"5"'
    assert refused[-1].headers["ETag"] == '"6"'
    assert audit_actions(app) == [*before, "app.create"]
    shown = world.get("/environments/shop").get_json()
    assert shown["settings"] == {"a": 1}
    assert shown["status"] == "new"
    assert [a["name"] for a in shown["apps"]] == ["db"]


def test_a_patch_that_changes_nothing_keeps_the_etag(world):
    world.create_env("shop", settings={"a": 1})

    same = world.patch("/environments/shop", {"settings": {"a": 1}})

    assert same.status_code == 200
    assert same.headers["ETag"] == '"1"'


# -- pending changes, status, endpoints ----------------------------------------------------------


def deploy_directly(app, env_name: str, revision: int = 1, status: str = "succeeded") -> None:
    """What a successful deployment leaves behind: the snapshot as the current revision."""
    with session(app) as s:
        env = s.scalar(select(Environment).where(Environment.name == env_name))
        spec = env_service.draft_spec(s, env)
        s.add(Deployment(environment_id=env.id, revision=revision, status=status, spec=spec))
        env.current_revision = env.last_revision = revision
        env.status = "ready"
        s.commit()


def test_pending_changes_follow_the_draft_against_the_current_revision(world, app):
    world.create_env("shop", settings={"site_name": "Shop"})
    assert world.get("/environments/shop").get_json()["has_pending_changes"] is False
    world.added(name="db", package="org.acme.db", version="^8.0.0")
    world.added(
        name="web",
        package="org.acme.web",
        version="~1.1.0",
        parameters={"admin_password": SECRET},
        bindings={"db": "db"},
    )
    assert world.get("/environments/shop").get_json()["has_pending_changes"] is True

    deploy_directly(app, "shop")
    deployed = world.get("/environments/shop").get_json()
    assert deployed["has_pending_changes"] is False
    assert deployed["current_revision"] == 1
    assert deployed["status"] == "ready"
    assert [(a["name"], a["status"], a["deployed_version"]) for a in deployed["apps"]] == [
        ("db", "running", "8.1.0"),
        ("web", "running", "1.1.0"),
    ]

    changed = world.patch("/environments/shop", {"settings": {"site_name": "Other"}})
    assert changed.get_json()["has_pending_changes"] is True
    restored = world.patch("/environments/shop", {"settings": {"site_name": "Shop"}})
    assert restored.get_json()["has_pending_changes"] is False

    # A newer version matching a draft's range is a pending change: a deploy would move to it.
    publish(world.client, world.publisher, "org.acme.db", "8.2.0", parameters=DB_PARAMETERS)
    assert world.get("/environments/shop").get_json()["has_pending_changes"] is True
    world.patch("/environments/shop/apps/db", {"version": "8.1.0"})
    assert world.get("/environments/shop").get_json()["has_pending_changes"] is False

    world.patch("/environments/shop/apps/web", {"parameters": {"admin_password": MASK}})
    assert world.get("/environments/shop").get_json()["has_pending_changes"] is False
    added = world.added(name="db2", package="org.acme.db")
    assert added["status"] == "pending"
    assert world.get("/environments/shop").get_json()["has_pending_changes"] is True


def test_app_status_and_endpoints_of_the_current_revision(world, app):
    world.shop_with_db()
    deploy_directly(app, "shop")
    world.added(name="extra", package="org.acme.db")
    with session(app) as s:
        env = s.scalar(select(Environment).where(Environment.name == "shop"))
        s.add_all(
            [
                HostPort(
                    port=20005, environment_id=env.id, app="web", service="web",
                    container_port=8080,
                ),
                HostPort(
                    port=20006, environment_id=env.id, app="extra", service="web",
                    container_port=8080,
                ),
                ContainerRecord(
                    id="c" * 64, environment_id=env.id, revision=1, app="db", service="web",
                    name="db-web", config_hash="h", state="running", health="unhealthy",
                ),
            ]
        )  # fmt: skip
        s.commit()
    app.extensions["catalog"]["settings"] = settings_of(app).replace(
        public_host="apps.example.test"
    )

    apps = {a["name"]: a for a in world.get("/environments/shop").get_json()["apps"]}

    assert apps["web"]["endpoints"] == [
        {
            "service": "web",
            "container_port": 8080,
            "protocol": "tcp",
            "host": "apps.example.test",
            "port": 20005,
        }
    ]
    assert apps["web"]["status"] == "running"
    assert apps["db"]["status"] == "unhealthy"
    assert apps["db"]["endpoints"] == []
    assert apps["extra"]["status"] == "pending"
    assert apps["extra"]["endpoints"] == []  # not running yet: its port is not served


def test_check_deployable_lists_what_a_deploy_would_refuse(world, app):
    world.create_env("shop")
    world.added(name="web", package="org.acme.web", parameters={"admin_password": SECRET})
    world.added(name="db", package="org.acme.db", version="9.0.0")
    with session(app) as s:
        env = s.scalar(select(Environment).where(Environment.name == "shop"))
        # Edits the API would refuse, straight into the rows: a dangling binding and a cycle.
        web = next(a for a in env.apps if a.name == "web")
        web.bindings = {"db": "gone"}
        s.add(App(environment_id=env.id, name="p", package="org.acme.peer", bindings={"peer": "q"}))
        s.add(App(environment_id=env.id, name="q", package="org.acme.peer", bindings={"peer": "p"}))
        db = next(a for a in env.apps if a.name == "db")
        db.version = "^10.0.0"
        s.commit()
        s.refresh(env)

        problems = env_service.check_deployable(s, env)

    assert [p["path"] for p in problems] == [
        "apps.db.version",
        "apps.p.bindings.peer",
        "apps.web.bindings.db",
    ]
    assert "binding cycle: p -> q -> p" in problems[1]["message"]
    assert "no app 'gone'" in problems[2]["message"]


def test_check_deployable_names_unbound_required_slots(world, app):
    world.create_env("shop")
    world.added(name="web", package="org.acme.web", parameters={"admin_password": SECRET})
    with session(app) as s:
        env = s.scalar(select(Environment).where(Environment.name == "shop"))
        problems = env_service.check_deployable(s, env)
        with pytest.raises(ValidationFailed, match="cannot be deployed"):
            env_service.draft_spec(s, env)

    assert problems == [
        {"path": "apps.web.bindings.db", "message": "slot 'db' is required but not bound"}
    ]


# -- delete --------------------------------------------------------------------------------------


def test_delete_answers_202_marks_deleting_and_publishes_the_teardown(world, app, published_tasks):
    world.shop_with_db()
    env_id = world.get("/environments/shop").get_json()["id"]

    first = world.delete("/environments/shop")
    again = world.delete("/environments/shop")

    assert first.status_code == again.status_code == 202
    assert published_tasks() == [(TEARDOWN_TASK, [env_id]), (TEARDOWN_TASK, [env_id])]
    shown = world.get("/environments/shop")
    assert shown.status_code == 200
    assert shown.get_json()["status"] == "deleting"
    for refused in (
        world.patch("/environments/shop", {"description": "x"}),
        world.add_app(name="db2", package="org.acme.db"),
        world.patch("/environments/shop/apps/web", {"version": "1.0.0"}),
        world.delete("/environments/shop/apps/web"),
    ):
        assert refused.status_code == 409
    assert audit_actions(app)[-2:] == ["environment.delete", "environment.delete"]


# -- tenants -------------------------------------------------------------------------------------


ROUTES = [
    ("GET", "/v1/environments/{E}", None),
    ("PATCH", "/v1/environments/{E}", {"description": "mine now"}),
    ("DELETE", "/v1/environments/{E}", None),
    ("POST", "/v1/environments/{E}/apps", {"name": "x", "package": "org.acme.db"}),
    ("GET", "/v1/environments/{E}/apps/web", None),
    ("PATCH", "/v1/environments/{E}/apps/web", {"version": "1.0.0"}),
    ("DELETE", "/v1/environments/{E}/apps/web", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_another_tenants_environment_answers_exactly_like_a_missing_one(world, method, path, body):
    world.shop_with_db()
    env_id = world.get("/environments/shop").get_json()["id"]

    for caller in (world.other, world.other_viewer):
        for ref in ("shop", env_id):
            hidden = world.client.open(
                path.replace("{E}", ref), method=method, json=body, headers=caller.headers
            )
            missing = world.client.open(
                path.replace("{E}", "nowhere"), method=method, json=body, headers=caller.headers
            )
            assert hidden.status_code == missing.status_code == 404
            assert hidden.get_json()["detail"] == missing.get_json()["detail"].replace(
                "nowhere", ref
            )
    assert world.get("/environments/shop").headers["ETag"] == '"3"'
    assert world.get("/environments", world.other).get_json()["items"] == []


def test_an_admin_reads_and_edits_every_tenants_environments(world):
    world.shop_with_db()
    world.create_env("shop", caller=world.other)
    world.create_env("solo", caller=world.other)
    acme_id = world.get("/environments/shop").get_json()["id"]

    solo = world.patch("/environments/solo", {"description": "by admin"}, world.admin)
    ambiguous = world.get("/environments/shop", world.admin)
    by_id = world.get(f"/environments/{acme_id}", world.admin)

    assert solo.status_code == 200
    assert solo.get_json()["tenant"] == "globex"
    assert ambiguous.status_code == 409
    assert "acme" in ambiguous.get_json()["detail"]
    assert by_id.status_code == 200
    assert by_id.get_json()["tenant"] == "acme"


# -- packages in use -----------------------------------------------------------------------------


def test_a_package_in_the_current_revision_cannot_be_deleted(world, app):
    world.create_env("shop")
    world.added(name="db", package="org.acme.db", version="8.0.0")
    deploy_directly(app, "shop")
    world.delete("/environments/shop/apps/db")
    pub = world.publisher.headers

    refused = world.client.delete("/v1/packages/org.acme.db/versions/8.0.0", headers=pub)
    other_version = world.client.delete("/v1/packages/org.acme.db/versions/9.0.0", headers=pub)

    assert refused.status_code == 409
    assert "environment 'shop' (app 'db')" in refused.get_json()["detail"]
    assert other_version.status_code == 204


def test_another_tenants_use_is_counted_not_named(world, app):
    made_public = world.client.patch(
        "/v1/packages/org.acme.db", json={"visibility": "public"}, headers=world.admin.headers
    )
    assert made_public.status_code == 200
    world.create_env("secret-project", caller=world.other)
    world.added("secret-project", caller=world.other, name="db", package="org.acme.db")
    deploy_directly(app, "secret-project")

    refused = world.client.delete("/v1/packages/org.acme.db", headers=world.publisher.headers)

    assert refused.status_code == 409
    assert refused.get_json()["detail"] == (
        "package org.acme.db is used by 1 environment(s) of other tenants"
    )
    assert "secret-project" not in refused.get_data(as_text=True)


# x-secret placed everywhere a JSON Schema can place it: a viewer never reads one of these.
HIDDEN = {
    "ref": "via-ref-1",
    "item": "via-items-2",
    "extra": "via-additional-3",
    "pattern": "via-pattern-4",
    "any": "via-anyof-5",
}
NESTED_SECRETS = {
    "type": "object",
    "$defs": {"secret": {"type": "string", "x-secret": True}},
    "properties": {
        "db": {"type": "object", "properties": {"password": {"$ref": "#/$defs/secret"}}},
        "keys": {"type": "array", "items": {"type": "string", "x-secret": True}},
        "users": {"type": "object", "additionalProperties": {"$ref": "#/$defs/secret"}},
        "env": {
            "type": "object",
            "patternProperties": {"_TOKEN$": {"type": "string", "x-secret": True}},
            "additionalProperties": {"type": "string"},
        },
        "auth": {"anyOf": [{"type": "null"}, {"type": "string", "x-secret": True}]},
    },
}
NESTED_VALUES = {
    "db": {"password": HIDDEN["ref"]},
    "keys": [HIDDEN["item"]],
    "users": {"alice": HIDDEN["extra"]},
    "env": {"API_TOKEN": HIDDEN["pattern"], "HOME": "/srv"},
    "auth": HIDDEN["any"],
}
NESTED_MASKED = {
    "db": {"password": MASK},
    "keys": [MASK],
    "users": {"alice": MASK},
    "env": {"API_TOKEN": MASK, "HOME": "/srv"},
    "auth": MASK,
}


def test_secrets_nested_anywhere_in_the_schema_are_masked_on_every_read(world, app):
    publish(world.client, world.publisher, "org.acme.vault", "1.0.0", parameters=NESTED_SECRETS)
    world.create_env("vault")
    body = world.added(env="vault", name="v", package="org.acme.vault", parameters=NESTED_VALUES)
    assert body["parameters"] == NESTED_MASKED
    template = world.client.post(
        "/v1/templates",
        json={"name": "vault-t", "description": "", "environment": "vault"},
        headers=world.deployer.headers,
    )
    assert template.status_code == 201, template.get_json()

    reads = [
        world.get(path, caller)
        for caller in (world.viewer, world.deployer)
        for path in (
            "/environments/vault",
            "/environments/vault/apps/v",
            "/environments",
            "/templates/vault-t",
            "/templates",
        )
    ]
    for response in [template, *reads]:
        assert response.status_code == 200 or response is template
        text = response.get_data(True)
        assert not [value for value in HIDDEN.values() if value in text], response.request.path
    assert reads[1].get_json()["parameters"] == NESTED_MASKED
    assert reads[3].get_json()["apps"][0]["parameters"] == NESTED_MASKED
    assert not [value for value in HIDDEN.values() if value in audit_text(app)]

    # Sent back masked, each nested secret keeps its stored value; a new one replaces it.
    changed = {**NESTED_MASKED, "keys": [MASK, "a-new-key"]}
    response = world.patch("/environments/vault/apps/v", {"parameters": changed})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["parameters"]["keys"] == [MASK, MASK]
    stored = stored_parameters(app, "vault", "v")
    assert stored == {**NESTED_VALUES, "keys": [HIDDEN["item"], "a-new-key"]}


def test_a_catastrophic_parameter_pattern_answers_at_once(world):
    """G44: `^(a+)+$` on 30 characters: exponential for a backtracking engine, not for RE2."""
    import time

    pattern = "^(a+)+$"
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": pattern}}}
    publish(world.client, world.publisher, "org.acme.regex", "1.0.0", parameters=schema)
    world.create_env("regex")
    world.added(env="regex", name="warm", package="org.acme.regex", parameters={"name": "aa"})

    started = time.perf_counter()
    response = world.add_app(
        env="regex", name="hostile", package="org.acme.regex", parameters={"name": "a" * 30 + "!"}
    )
    took = time.perf_counter() - started

    assert paths(response) == ["parameters.name"]
    print(f"catastrophic pattern: the request answered in {took * 1000:.1f} ms")
    assert took < 0.1, f"{took:.3f} s"  # the whole request: about 10 ms here


def test_a_pattern_re2_cannot_match_is_refused_at_upload_naming_the_parameter(world):
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": "(a)\\1"}}}
    response = world.client.post(
        "/v1/packages",
        data=package_bytes("org.acme.backref", "1.0.0", parameters=schema),
        content_type="application/gzip",
        headers=world.publisher.headers,
    )

    assert response.status_code == 400, response.get_json()
    (error,) = response.get_json()["errors"]
    assert error["path"] == "parameters.properties.name.pattern"
    assert "RE2" in error["message"]
