"""Registry credentials through the API on PostgreSQL: kept for the caller's tenant (an admin:
the tenant named), the password sealed at rest and never answered, refusals naming their
field, keyset pages, audit rows without the password, and `rotate-secrets` sealing them again.
The pulls they serve, from a real registry: tests/integration/test_private_registry.py."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from catalog import config
from catalog.models import AuditEvent, GuardedRegistry, RegistryCredential
from catalog.secretbox import SecretBox, new_key
from catalogctl.main import main
from tests.conftest import TEST_SECRET_KEY

PASSWORD = "hunter2-but-longer"
LOOPBACK = {"REGISTRIES": "*,127.0.0.1:5000,localhost:5001"}


def add(client, caller, expect: int = 201, **body) -> dict:
    response = client.post("/v1/registries", json=body, headers=caller.headers)
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def listed(client, caller, expect: int = 200, **params) -> dict:
    response = client.get("/v1/registries", query_string=params, headers=caller.headers)
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def credentials(**extra) -> dict:
    return {"server": "ghcr.io", "username": "acme-bot", "password": PASSWORD, **extra}


def test_credentials_are_kept_for_the_callers_tenant_and_the_password_never_comes_back(
    app, client, make_caller
):
    acme = make_caller("acme", "publisher")

    created = add(client, acme, **credentials(server="GHCR.io"))

    assert created == {
        "id": created["id"], "tenant": "acme", "server": "ghcr.io", "username": "acme-bot",
        "created_at": created["created_at"],
    }  # fmt: skip
    assert listed(client, acme) == {"items": [created], "next_cursor": None}
    refused = add(client, acme, 409, **credentials(server="ghcr.io"))
    assert "credentials for ghcr.io already" in refused["detail"]
    with app.extensions["catalog"]["sessionmaker"]() as session:
        row = session.get(RegistryCredential, created["id"])
        assert PASSWORD not in json.dumps(row.password)
        assert SecretBox([TEST_SECRET_KEY]).open(row.password) == PASSWORD


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        (credentials(server="https://ghcr.io"), "server", "no scheme or path"),
        (credentials(server="ghcr.io/acme"), "server", "no scheme or path"),
        (credentials(server="registry"), "server", "as the start of a repository path"),
        (credentials(server="ghcr.io:99999"), "server", "from 1 to 65535"),
        (credentials(server="catalog.local"), "server", "the catalog's own registry"),
        (credentials(server="127.0.0.1:5000"), "server", "CATALOG_REGISTRIES"),
        ({"username": "u", "password": "p"}, "server", "Missing data"),
        ({"server": "ghcr.io", "password": "p"}, "username", "Missing data"),
        ({"server": "ghcr.io", "username": "u"}, "password", "Missing data"),
        (credentials(password=""), "password", "Length"),
        (credentials(username="a\tb"), "username", "no control characters"),
    ],
)
def test_a_bad_server_or_a_missing_field_is_a_400_naming_the_field(
    app, client, make_caller, body, path, words
):
    refused = add(client, make_caller("acme", "publisher"), 400, **body)

    assert [e["path"] for e in refused["errors"]] == [path]
    assert words in refused["errors"][0]["message"]
    assert PASSWORD not in json.dumps(refused)
    with app.extensions["catalog"]["sessionmaker"]() as session:
        assert session.scalars(select(RegistryCredential)).all() == []


@pytest.mark.parametrize("app_config", [LOOPBACK])
def test_a_loopback_registry_is_taken_once_catalog_registries_lists_it(client, make_caller):
    acme = make_caller("acme", "publisher")

    assert add(client, acme, **credentials(server="127.0.0.1:5000"))["server"] == "127.0.0.1:5000"
    refused = add(client, acme, 400, **credentials(server="127.0.0.1:5999"))
    assert "CATALOG_REGISTRIES" in refused["errors"][0]["message"]


@pytest.mark.parametrize("app_config", [LOOPBACK])
def test_the_list_is_keyset_paginated_by_server(client, make_caller):
    acme = make_caller("acme", "publisher")
    servers = ["quay.io", "ghcr.io", "127.0.0.1:5000", "localhost:5001", "docker.io"]
    for server in servers:
        add(client, acme, **credentials(server=server))

    seen, cursor = [], None
    while True:
        page = listed(client, acme, limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= 2
        seen += [item["server"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(servers)
    assert listed(client, acme, 400, cursor="garbage")["errors"][0]["path"] == "cursor"


def test_tenants_keep_their_own_and_an_admin_names_the_tenant(client, make_caller):
    acme, globex = make_caller("acme", "publisher"), make_caller("globex", "publisher")
    admin, deployer = make_caller("system", "admin"), make_caller("acme", "deployer")
    mine = add(client, acme, **credentials())
    theirs = add(client, globex, **credentials(username="globex-bot"))  # the same server

    assert [r["id"] for r in listed(client, globex)["items"]] == [theirs["id"]]
    assert client.delete(f"/v1/registries/{mine['id']}", headers=globex.headers).status_code == 404
    add(client, acme, 403, **credentials(server="quay.io", tenant="globex"))
    listed(client, acme, 403, tenant="globex")
    add(client, deployer, 403, **credentials(server="quay.io"))
    listed(client, deployer, 403)
    # An admin keeps credentials for the tenant it names, and reads every tenant's.
    for_globex = add(client, admin, **credentials(server="quay.io", tenant="globex"))
    assert for_globex["tenant"] == "globex"
    assert {r["id"] for r in listed(client, admin)["items"]} == {
        mine["id"], theirs["id"], for_globex["id"],
    }  # fmt: skip
    assert {r["id"] for r in listed(client, admin, tenant="acme")["items"]} == {mine["id"]}
    add(client, admin, 404, **credentials(tenant="nobody"))
    assert client.delete(f"/v1/registries/{mine['id']}", headers=acme.headers).status_code == 204
    assert [r["id"] for r in listed(client, acme)["items"]] == []
    deleted = client.delete(f"/v1/registries/{theirs['id']}", headers=admin.headers)
    assert deleted.status_code == 204


def test_the_trail_records_create_and_delete_without_the_password(app, client, make_caller):
    acme = make_caller("acme", "publisher")
    created = add(client, acme, **credentials())
    client.delete(f"/v1/registries/{created['id']}", headers=acme.headers)
    add(client, make_caller("acme", "viewer"), 403, **credentials())

    with app.extensions["catalog"]["sessionmaker"]() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        rows = [(e.action, e.object_id, e.detail, e.result) for e in events
                if e.action.startswith("registr")]  # fmt: skip
        # Credentials guard nothing by themselves: a pull with them guards its repository.
        assert session.scalars(select(GuardedRegistry)).all() == []
    assert rows[:2] == [
        ("registry.create", created["id"], {"server": "ghcr.io"}, "ok"),
        ("registry.delete", created["id"], {"server": "ghcr.io"}, "ok"),
    ]
    assert rows[2][3] == "forbidden"
    assert PASSWORD not in json.dumps(rows, default=str)


@pytest.mark.parametrize("app_config", [{"WEBHOOK_ALLOW": "hooks.example.org"}])
def test_rotate_secrets_seals_registry_passwords_and_webhook_secrets_again(
    app, client, make_caller, database_url, monkeypatch, capsys
):
    acme = make_caller("acme", "publisher")
    add(client, acme, **credentials())
    webhook = client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.org/hook", "events": ["package.published"]},
        headers=acme.headers,
    )
    assert webhook.status_code == 201, webhook.get_json()
    new = new_key()
    monkeypatch.setenv("CATALOG_DATABASE_URL", database_url)
    monkeypatch.setenv("CATALOG_SECRET_KEY", f"{new},{TEST_SECRET_KEY}")
    monkeypatch.setattr(config, "_current", None)  # settings of an earlier command go

    assert main(["admin", "rotate-secrets"]) == 0
    assert capsys.readouterr().out.startswith("2 secret(s) encrypted again with the first key")
    with app.extensions["catalog"]["engine"].connect() as conn:
        (password,) = conn.execute(text("SELECT password FROM registry_credentials")).scalars()
        (secret,) = conn.execute(text("SELECT secret FROM webhooks")).scalars()
    assert SecretBox([new]).open(password) == PASSWORD
    assert SecretBox([new]).open(secret) == webhook.get_json()["secret"]
