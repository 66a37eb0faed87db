"""The audit trail read back: filters, keyset paging both ways, who may read what, and the
writes the API refused (401, 403, 409, 429) recorded without a token or secret in them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from catalog.models import AuditEvent
from catalog.services.pagination import encode_cursor
from tests.integration.conftest import package_bytes


@pytest.fixture
def trail(client, make_caller):
    """Two tenants' publishers publish and delete; a viewer is refused. -> their callers."""
    callers = {
        "admin": make_caller("system", "admin"),
        "acme": make_caller("acme", "publisher"),
        "globex": make_caller("globex", "publisher"),
        "viewer": make_caller("acme", "viewer"),
    }
    for tenant, name in (("acme", "org.acme.a"), ("acme", "org.acme.b"), ("globex", "org.gx.a")):
        upload(client, callers[tenant], package_bytes(name, "1.0.0"), 201)
    deleted = client.delete("/v1/packages/org.acme.b", headers=callers["acme"].headers)
    assert deleted.status_code == 204
    upload(client, callers["viewer"], package_bytes("org.acme.c", "1.0.0"), 403)
    return callers


def upload(client, caller, body: bytes, expected: int, headers=None):
    response = client.post(
        "/v1/packages",
        data=body,
        content_type="application/gzip",
        headers={**(caller.headers if caller else {}), **(headers or {})},
    )
    assert response.status_code == expected, response.get_json()
    return response


def audit(client, caller, expected: int = 200, **params) -> dict:
    response = client.get("/v1/audit", query_string=params, headers=caller.headers)
    assert response.status_code == expected, response.get_json()
    return response.get_json()


def every_page(client, caller, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        page = audit(client, caller, **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def stored(app) -> list[AuditEvent]:
    with app.extensions["catalog"]["sessionmaker"]() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_pages_newest_first_and_oldest_first_after_an_id_cover_every_event_once(client, app, trail):
    admin = trail["admin"]
    ids = [e.id for e in stored(app)]

    newest_first = every_page(client, admin, limit=2)
    assert [e["id"] for e in newest_first] == ids[::-1]

    after = ids[1]
    oldest_first = every_page(client, admin, limit=2, after=after)
    assert [e["id"] for e in oldest_first] == ids[2:]
    assert audit(client, admin, after=ids[-1])["items"] == []

    assert audit(client, admin, 400, cursor="not-a-cursor")["errors"][0]["path"] == "cursor"
    for crafted in (["x"], [2**70], [1.5]):
        refused = audit(client, admin, 400, cursor=encode_cursor(crafted))
        assert refused["errors"][0]["path"] == "cursor"
    assert audit(client, admin, 400, action="package;drop")["errors"][0]["path"] == "action"


def test_filters_narrow_to_tenant_actor_action_object_result_and_time(client, app, trail):
    admin, acme = trail["admin"], trail["acme"]

    def actions(**params) -> list[tuple[str, str]]:
        return [(e["action"], e["object_id"]) for e in every_page(client, admin, **params)]

    assert actions(tenant="globex") == [
        ("package.publish", "org.gx.a@1.0.0"),
        ("token.create", trail["globex"].token_id),
    ]
    assert actions(actor=acme.token_id) == [
        ("package.delete", "org.acme.b"),
        ("package.publish", "org.acme.b@1.0.0"),
        ("package.publish", "org.acme.a@1.0.0"),
    ]
    assert actions(action="package.delete") == [("package.delete", "org.acme.b")]
    assert [a for a, _ in actions(action="package.*")] == ["package.delete"] + [
        "package.publish"
    ] * 3
    assert actions(object="org.acme.b") == [("package.delete", "org.acme.b")]
    assert actions(result="forbidden") == [("packages.upload", "/v1/packages")]
    assert audit(client, admin, 404, tenant="initech")

    # A window of time: the first upload moved an hour back.
    first = next(e for e in stored(app) if e.object_id == "org.acme.a@1.0.0")
    with app.extensions["catalog"]["sessionmaker"]() as session:
        earlier = datetime.now(UTC) - timedelta(hours=1)
        session.execute(
            update(AuditEvent).where(AuditEvent.id == first.id).values(created_at=earlier)
        )
        session.commit()
    half_an_hour_ago = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    assert ("package.publish", "org.acme.a@1.0.0") not in actions(since=half_an_hour_ago)
    assert actions(until=half_an_hour_ago) == [("package.publish", "org.acme.a@1.0.0")]
    bare = (datetime.now(UTC) - timedelta(minutes=30)).replace(tzinfo=None).isoformat()
    assert actions(until=bare) == [("package.publish", "org.acme.a@1.0.0")]  # no offset: UTC


def test_a_publisher_reads_its_own_tenant_and_a_viewer_reads_nothing(client, trail):
    acme, globex = trail["acme"], trail["globex"]
    mine = every_page(client, acme)
    assert {e["tenant"] for e in mine} == {"acme"}
    assert {e["object_id"] for e in mine} >= {"org.acme.a@1.0.0", "org.acme.b", "/v1/packages"}
    assert [e["object_id"] for e in every_page(client, globex, action="package.*")] == [
        "org.gx.a@1.0.0"
    ]
    assert audit(client, acme, tenant="acme")["items"] == audit(client, acme)["items"]
    refused = audit(client, acme, 403, tenant="globex")
    assert "own tenant" in refused["detail"]
    audit(client, trail["viewer"], 403)


def test_refused_writes_are_recorded_without_their_token(client, app, trail):
    admin, acme = trail["admin"], trail["acme"]
    before = {e.id for e in stored(app)}
    guessed = "cat_guessed-secret-that-must-not-be-stored"
    upload(
        client,
        None,
        package_bytes("org.acme.x", "1.0.0"),
        401,
        {"Authorization": f"Bearer {guessed}"},
    )
    upload(client, acme, package_bytes("org.acme.a", "1.0.0"), 409)  # that version exists
    patched = client.patch("/v1/packages/org.gx.a", json={"title": "x"}, headers=acme.headers)
    assert patched.status_code == 404  # another tenant's: not found, and not a refusal

    new = [e for e in stored(app) if e.id not in before]
    assert [(e.result, e.action, e.actor, e.detail["status"]) for e in new] == [
        ("unauthorized", "packages.upload", None, 401),
        ("conflict", "packages.upload", acme.token_id, 409),
    ]
    assert new[0].detail == {
        "method": "POST", "route": "/v1/packages", "status": 401, "address": "127.0.0.1",
    }  # fmt: skip
    everything = json.dumps(every_page(client, admin)) + repr([vars(e) for e in stored(app)])
    assert guessed not in everything and guessed.removeprefix("cat_") not in everything
    for caller in trail.values():
        assert caller.secret not in everything


@pytest.mark.parametrize(
    "app_config", [{"UPLOAD_RATE_LIMIT": "1/minute", "AUDIT_REFUSAL_RATE_LIMIT": "2/minute"}]
)
def test_rate_limited_writes_are_recorded_up_to_the_refusal_rate(client, app, make_caller):
    publisher = make_caller("acme", "publisher")
    upload(client, publisher, package_bytes("org.acme.one", "1.0.0"), 201)
    for n in range(4):
        upload(client, publisher, package_bytes("org.acme.two", f"1.0.{n}"), 429)

    refusals = [e for e in stored(app) if e.result != "ok"]
    assert [(e.result, e.actor) for e in refusals] == [("rate_limited", publisher.token_id)] * 2


@pytest.mark.parametrize("app_config", [{"AUDIT_REFUSAL_RATE_LIMIT": "3/minute"}])
def test_walking_through_ones_own_ipv6_addresses_records_no_more_refusals(client, app):
    for n in range(1, 11):  # ten addresses of one /64, each refused anonymously
        refused = client.post(
            "/v1/categories", json={"name": "x"}, environ_base={"REMOTE_ADDR": f"2001:db8::{n}"}
        )
        assert refused.status_code == 401
    another = client.post(
        "/v1/categories", json={"name": "x"}, environ_base={"REMOTE_ADDR": "2001:db8:0:1::1"}
    )
    assert another.status_code == 401

    refusals = [e for e in stored(app) if e.result != "ok"]
    assert len(refusals) == 4  # 3 for the first /64, 1 for the other
