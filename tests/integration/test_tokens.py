"""F40: bearer tokens. Malformed, unknown, revoked, expired or query-string tokens get 401;
secrets never reach logs, audit events or any table; `catalogctl admin bootstrap` works."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from catalog.models import AuditEvent, Base, Token
from catalog.models.common import utcnow
from tests.integration.conftest import package_bytes


def sessionmaker(app):
    return app.extensions["catalog"]["sessionmaker"]


def audit_actions(app) -> list[str]:
    """The changes on the audit trail (refused writes are events of their own)."""
    with sessionmaker(app)() as session:
        query = select(AuditEvent.action).where(AuditEvent.result == "ok")
        return list(session.scalars(query.order_by(AuditEvent.id)))


def assert_unauthorized(response, detail_contains: str | None = None) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="catalog"'
    body = response.get_json()
    assert body["status"] == 401 and body["title"] == "Unauthorized"
    if detail_contains:
        assert detail_contains in body["detail"]


# -- what the Authorization header must look like ---------------------------------------------

# `{s}` is a valid viewer secret.
AUTHORIZATION_HEADERS = [
    ("Bearer {s}", 200),
    ("bearer {s}", 200),  # the scheme is case-insensitive (RFC 9110)
    ("Bearer   {s}  ", 200),
    ("Bearer", 401),
    ("Bearer ", 401),
    ("Bearer{s}", 401),
    ("{s}", 401),
    ("Basic {s}", 401),
    ("Token {s}", 401),
    ("Bearer cat_", 401),
    ("Bearer {s}x", 401),
    ("Bearer {s} {s}", 401),
    ("Bearer cat_not-a-token-anyone-was-given", 401),
]


@pytest.mark.parametrize(("header", "expected"), AUTHORIZATION_HEADERS)
def test_authorization_header_forms(client, make_caller, header, expected):
    viewer = make_caller("acme", "viewer")
    response = client.get(
        "/v1/packages", headers={"Authorization": header.replace("{s}", viewer.secret)}
    )
    if expected == 401:
        assert_unauthorized(response)
    else:
        assert response.status_code == expected


@pytest.mark.parametrize("path", ["/v1/packages", "/v1/tenants", "/v1/tokens", "/v1/categories"])
def test_no_header_is_401(client, make_caller, path):
    assert_unauthorized(client.get(path), "bearer token is required")


@pytest.mark.parametrize("parameter", ["token", "access_token", "api_key", "apikey"])
@pytest.mark.parametrize("value", ["good", "junk"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/packages"),
        ("GET", "/v1/tokens"),
        ("POST", "/v1/tenants"),
        ("DELETE", "/v1/categories/web"),
    ],
)
def test_a_token_in_the_query_string_is_401_even_with_a_good_header(
    client, app, make_caller, parameter, value, method, path
):
    admin = make_caller("admin", "admin")
    before = audit_actions(app)
    secret = admin.secret if value == "good" else "cat_junk"

    response = client.open(
        path,
        method=method,
        query_string={parameter: secret},
        json={"name": "initech"} if method == "POST" else None,
        headers=admin.headers,
    )

    assert_unauthorized(response, "only in the Authorization header")
    assert audit_actions(app) == before
    # A refused write is on the trail (a read is not), and the token it carried is not.
    with sessionmaker(app)() as session:
        refused = session.scalars(select(AuditEvent).where(AuditEvent.result != "ok")).all()
    expected = [] if method == "GET" else [("unauthorized", path)]
    assert [(e.result, e.object_id) for e in refused] == expected
    assert secret not in repr([vars(e) for e in refused])


# Requests whose arguments are invalid too: authentication answers first, with 401.
INVALID_REQUESTS = [
    ("PATCH", "/v1/packages/org.acme.web", {"json": {"tenant": "globex"}}),
    ("PATCH", "/v1/packages/org.acme.web/versions/1.0.0", {"json": {}}),
    ("GET", "/v1/packages", {"query_string": {"limit": 0, "sort": "size"}}),
    ("POST", "/v1/packages", {"query_string": {"visibility": "all"}, "data": b"x"}),
    ("POST", "/v1/tenants", {"json": {"name": "Not A Name"}}),
    ("POST", "/v1/tokens", {"json": {}}),
    ("POST", "/v1/categories", {"json": {"name": ""}}),
]


@pytest.mark.parametrize("credentials", ["none", "query-string"])
@pytest.mark.parametrize(("method", "path", "options"), INVALID_REQUESTS)
def test_authentication_comes_before_argument_validation(
    client, make_caller, credentials, method, path, options
):
    admin = make_caller("admin", "admin")
    if credentials == "none":
        headers = {}
    else:
        headers = admin.headers
        options = {**options, "query_string": {**options.get("query_string", {}), "token": "x"}}

    response = client.open(path, method=method, headers=headers, **options)

    assert_unauthorized(response)


def test_health_and_the_openapi_document_need_no_token(client):
    assert client.get("/v1/health").status_code == 200
    assert client.get("/v1/health?token=whatever").status_code == 200
    assert client.get("/v1/openapi.json").status_code == 200
    assert client.get("/v1/no-such-route").status_code == 404


# -- revocation ---------------------------------------------------------------------------------


def test_an_admin_revokes_a_token_and_it_stops_on_the_very_next_request(client, app, make_caller):
    admin = make_caller("admin", "admin")
    viewer = make_caller("acme", "viewer")
    assert client.get("/v1/packages", headers=viewer.headers).status_code == 200

    response = client.delete(f"/v1/tokens/{viewer.token_id}", headers=admin.headers)

    assert response.status_code == 204
    assert_unauthorized(client.get("/v1/packages", headers=viewer.headers), "not valid")
    listed = client.get("/v1/tokens", headers=admin.headers).get_json()["items"]
    assert viewer.token_id not in {t["id"] for t in listed}
    # Revoking twice: the token is gone as far as the API is concerned.
    assert client.delete(f"/v1/tokens/{viewer.token_id}", headers=admin.headers).status_code == 404
    assert audit_actions(app)[-1] == "token.revoke"
    assert audit_actions(app).count("token.revoke") == 1


def test_a_token_revokes_itself(client, make_caller):
    publisher = make_caller("acme", "publisher")

    assert (
        client.delete(f"/v1/tokens/{publisher.token_id}", headers=publisher.headers).status_code
        == 204
    )

    assert_unauthorized(client.get("/v1/tokens", headers=publisher.headers))
    assert_unauthorized(
        client.delete(f"/v1/tokens/{publisher.token_id}", headers=publisher.headers)
    )


@pytest.mark.parametrize("role", ["publisher", "deployer", "viewer"])
def test_a_non_admin_cannot_revoke_another_token_and_learns_nothing(client, app, make_caller, role):
    someone = make_caller("acme", role)
    colleague = make_caller("acme", "viewer")
    before = audit_actions(app)

    response = client.delete(f"/v1/tokens/{colleague.token_id}", headers=someone.headers)
    missing = client.delete("/v1/tokens/0123456789abcdef0123456789abcdef", headers=someone.headers)

    assert response.status_code == missing.status_code == 404
    assert client.get("/v1/packages", headers=colleague.headers).status_code == 200
    assert audit_actions(app) == before


# -- expiry -------------------------------------------------------------------------------------


def test_an_expired_token_is_401(client, app, make_caller):
    admin = make_caller("admin", "admin")
    make_caller("acme", "viewer")
    created = client.post(
        "/v1/tokens",
        json={"tenant": "acme", "role": "viewer", "expires_in": 3600},
        headers=admin.headers,
    )
    assert created.status_code == 201
    body = created.get_json()
    assert body["expires_at"] is not None
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/v1/packages", headers=headers).status_code == 200

    with sessionmaker(app)() as session:
        session.execute(
            update(Token)
            .where(Token.id == body["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()

    assert_unauthorized(client.get("/v1/packages", headers=headers), "expired")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"tenant": "acme", "role": "viewer", "expires_in": 59}, "expires_in"),
        ({"tenant": "acme", "role": "root"}, "role"),
        ({"tenant": "acme"}, "role"),
        ({"role": "viewer"}, "tenant"),
        ({"tenant": "acme", "role": "viewer", "secret": "cat_mine"}, "secret"),
    ],
)
def test_token_requests_are_validated(client, app, make_caller, body, path):
    admin = make_caller("admin", "admin")
    make_caller("acme", "viewer")
    before = audit_actions(app)

    response = client.post("/v1/tokens", json=body, headers=admin.headers)

    assert response.status_code == 400
    assert path in {e["path"] for e in response.get_json()["errors"]}
    assert audit_actions(app) == before


def test_a_token_for_an_unknown_tenant_is_404(client, make_caller):
    admin = make_caller("admin", "admin")
    response = client.post(
        "/v1/tokens", json={"tenant": "nobody", "role": "viewer"}, headers=admin.headers
    )
    assert response.status_code == 404


# -- a new token: its tenant and role come from the token, never from the request -------------


def test_a_new_token_carries_its_tenant_and_role(client, app, make_caller):
    admin = make_caller("admin", "admin")
    make_caller("acme", "viewer")
    make_caller("globex", "viewer")

    created = client.post(
        "/v1/tokens",
        json={"tenant": "acme", "role": "publisher", "description": "ci"},
        headers=admin.headers,
    )

    assert created.status_code == 201
    body = created.get_json()
    assert {"id", "token", "tenant", "role"} <= set(body)
    assert (body["tenant"], body["role"], body["description"]) == ("acme", "publisher", "ci")
    assert body["token"].startswith("cat_")
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert [t["name"] for t in client.get("/v1/tenants", headers=headers).get_json()["items"]] == [
        "acme"
    ]
    # A tenant named in the query string changes nothing: the package is acme's.
    upload = client.post(
        "/v1/packages?tenant=globex&owner=globex",
        data=package_bytes("org.acme.ci", "1.0.0"),
        content_type="application/gzip",
        headers=headers,
    )
    assert upload.status_code == 201
    shown = client.get("/v1/packages/org.acme.ci", headers=admin.headers).get_json()
    assert shown["owner"] == "acme"
    # The secret was shown once: listings never carry it.
    listing = client.get("/v1/tokens", headers=admin.headers)
    assert body["token"] not in listing.get_data(as_text=True)
    assert all("token" not in item for item in listing.get_json()["items"])


# -- secrets never leak ---------------------------------------------------------------------------


def all_rows_as_text(app) -> str:
    """Every row of every table, as text."""
    chunks = []
    with sessionmaker(app)() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(table.select()):
                chunks.append(json.dumps([str(value) for value in row]))
    return "\n".join(chunks)


def test_secrets_never_reach_logs_audit_events_or_tables(client, app, make_caller, caplog):
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy pins its own logger to WARNING; open it too: statements, parameters, rows.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    admin = make_caller("admin", "admin")
    created = client.post("/v1/tenants", json={"name": "acme"}, headers=admin.headers)
    assert created.status_code == 201
    issued = client.post(
        "/v1/tokens", json={"tenant": "acme", "role": "publisher"}, headers=admin.headers
    )
    assert issued.status_code == 201
    secret = issued.get_json()["token"]
    bearer = {"Authorization": f"Bearer {secret}"}
    # Use it, misuse it, revoke it, use it again: (method, path, options, expected status).
    flow = [
        ("POST", "/v1/packages", {"data": package_bytes("org.acme.app")}, 201),
        ("PATCH", "/v1/packages/org.acme.app", {"json": {"description": "x"}}, 200),
        ("GET", "/v1/packages", {"query_string": {"token": secret}}, 401),
        ("GET", "/v1/packages", {"headers": {"Authorization": f"Token {secret}"}}, 401),
        ("GET", "/v1/packages", {"headers": {"Authorization": f"Bearer {secret}x"}}, 401),
        ("DELETE", f"/v1/tokens/{issued.get_json()['id']}", {}, 204),
        ("GET", "/v1/packages", {}, 401),
    ]
    for method, path, options, expected in flow:
        options = {"headers": bearer, "content_type": "application/gzip", **options}
        if "data" not in options:
            del options["content_type"]
        response = client.open(path, method=method, **options)
        assert response.status_code == expected, (method, path, response.get_json())

    logged = caplog.text + "".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
    )
    assert "package_versions" in logged.lower(), "the log capture saw no SQL: the check is void"
    for leaked in (secret, admin.secret):
        assert leaked not in logged
        assert leaked not in all_rows_as_text(app)
    actions = audit_actions(app)
    assert actions[-5:] == [
        "tenant.create",
        "token.create",
        "package.publish",
        "package.update",
        "token.revoke",
    ]


# -- bootstrap ------------------------------------------------------------------------------------


def test_catalogctl_admin_bootstrap_prints_a_working_admin_token(
    client, app, database_url, tmp_path
):
    catalogctl = Path(sys.executable).parent / "catalogctl"
    assert catalogctl.is_file(), "catalogctl is not installed in the virtualenv"
    env = {
        **os.environ,
        "CATALOG_DATABASE_URL": database_url,
        "CATALOG_HOME": str(tmp_path / "home"),
    }

    runs = [
        subprocess.run(
            [str(catalogctl), "admin", "bootstrap"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for _ in range(2)
    ]

    secrets = []
    for run in runs:
        assert run.returncode == 0, run.stderr
        lines = run.stdout.strip().splitlines()
        assert len(lines) == 1, run.stdout
        secrets.append(lines[0])
    assert secrets[0] != secrets[1]
    for secret in secrets:
        assert secret.startswith("cat_")
        assert secret not in runs[0].stderr + runs[1].stderr
        headers = {"Authorization": f"Bearer {secret}"}
        tokens = client.get("/v1/tokens", headers=headers)
        assert tokens.status_code == 200
        assert {t["role"] for t in tokens.get_json()["items"]} == {"admin"}
    # The first token is a full admin.
    headers = {"Authorization": f"Bearer {secrets[0]}"}
    assert client.post("/v1/tenants", json={"name": "acme"}, headers=headers).status_code == 201
    assert (
        client.post(
            "/v1/tokens", json={"tenant": "acme", "role": "publisher"}, headers=headers
        ).status_code
        == 201
    )
    tenants = client.get("/v1/tenants", headers=headers).get_json()["items"]
    assert {t["name"] for t in tenants} == {"admin", "acme"}  # one admin tenant, reused
    assert audit_actions(app)[:2] == ["token.bootstrap", "token.bootstrap"]
