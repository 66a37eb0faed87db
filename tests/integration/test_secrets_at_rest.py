"""Secret parameters at rest on PostgreSQL: encrypted in every table that keeps them, key
rotation with `catalogctl admin rotate-secrets`, clear legacy values sealed by the rotation
(by migration 0006: tests/integration/test_migrations.py), and a clear error for a missing or
wrong key."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from catalog import create_app, settings_of
from catalog.secretbox import SecretBox, SecretKeyError, new_key, open_all
from catalogctl.main import main
from tests.conftest import TEST_SECRET_KEY
from tests.integration import test_environments_api as environments
from tests.integration.test_environments_api import MASK, SECRET, deploy_directly

world = environments.world

TABLES = (("apps", "parameters"), ("templates", "apps"), ("deployments", "spec"))


def stored_rows(app) -> list[str]:
    """The JSON text of every row that may keep a secret."""
    with app.extensions["catalog"]["engine"].connect() as conn:
        return [
            text_
            for table, column in TABLES
            for text_ in conn.execute(text(f"SELECT {column}::text FROM {table}")).scalars()
        ]


def sealed_tokens(app) -> list[dict]:
    """Every sealed value of those rows."""
    found: list[dict] = []

    def walk(node):
        if isinstance(node, dict):
            if set(node) == {"$secret"}:
                found.append(node)
            else:
                for item in node.values():
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for row in stored_rows(app):
        walk(json.loads(row))
    return found


def shop_everywhere(world) -> None:
    """The secret in a draft app, a template and a deployment snapshot."""
    world.shop_with_db()
    deploy_directly(world.app, "shop")
    response = world.client.post(
        "/v1/templates",
        json={"name": "shop-t", "description": "", "environment": "shop"},
        headers=world.deployer.headers,
    )
    assert response.status_code == 201, response.get_json()


def rotate(monkeypatch, capsys, database_url: str, keys: str) -> str:
    monkeypatch.setenv("CATALOG_DATABASE_URL", database_url)
    monkeypatch.setenv("CATALOG_SECRET_KEY", keys)
    code = main(["admin", "rotate-secrets"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_no_row_holds_a_secret_in_clear(world, app):
    shop_everywhere(world)

    rows = stored_rows(app)
    assert len(rows) == 4 and not [row for row in rows if SECRET in row]  # 2 apps
    assert len(sealed_tokens(app)) == 3 * 2  # web.admin_password, db.root_password (default)


def test_rotation_seals_again_with_the_first_key_and_the_old_one_can_then_go(
    world, app, database_url, monkeypatch, capsys
):
    shop_everywhere(world)
    new = new_key()

    out = rotate(monkeypatch, capsys, database_url, f"{new},{TEST_SECRET_KEY}")

    assert out.startswith("6 secret(s) encrypted again with the first key, 0 stored in clear")
    tokens = sealed_tokens(app)
    assert [SecretBox([new]).open(t) for t in tokens].count(SECRET) == 3
    with pytest.raises(SecretKeyError, match="cannot be decrypted with the keys"):
        SecretBox([TEST_SECRET_KEY]).open(tokens[0])
    # An API on the new key alone reads, keeps and deploys the rotated secrets.
    rotated = create_app({**settings_of(app).as_mapping(), "SECRET_KEY": new})
    client = rotated.test_client()
    kept = client.patch(
        "/v1/environments/shop/apps/web",
        json={"parameters": {"admin_password": MASK}},
        headers=world.deployer.headers,
    )
    assert kept.status_code == 200, kept.get_json()
    created = client.post(
        "/v1/templates/shop-t/environments",
        json={"name": "shop2", "host": None},
        headers=world.deployer.headers,
    )
    assert created.status_code == 201, created.get_json()
    rotated.extensions["catalog"]["engine"].dispose()
    rotated.extensions["catalog"]["read_engine"].dispose()


def test_an_old_key_listed_second_still_opens_what_it_sealed(world, app):
    world.shop_with_db()
    both = create_app(
        {**settings_of(app).as_mapping(), "SECRET_KEY": f"{new_key()},{TEST_SECRET_KEY}"}
    )

    response = both.test_client().patch(
        "/v1/environments/shop/apps/web",
        json={"parameters": {"admin_password": MASK}},
        headers=world.deployer.headers,
    )

    assert response.status_code == 200, response.get_json()
    both.extensions["catalog"]["engine"].dispose()
    both.extensions["catalog"]["read_engine"].dispose()


def test_secrets_stored_in_clear_by_an_older_catalog_are_sealed_by_the_rotation(
    world, app, database_url, monkeypatch, capsys
):
    world.shop_with_db()
    box = SecretBox([TEST_SECRET_KEY])
    with app.extensions["catalog"]["engine"].begin() as conn:  # as it was before encryption
        for app_id, parameters in conn.execute(text("SELECT id, parameters FROM apps")):
            conn.execute(
                text("UPDATE apps SET parameters = :p WHERE id = :id"),
                {"p": json.dumps(open_all(parameters, box)), "id": app_id},
            )
    assert [row for row in stored_rows(app) if SECRET in row]
    assert world.get("/environments/shop/apps/web").get_json()["parameters"]["admin_password"] == (
        MASK
    )

    out = rotate(monkeypatch, capsys, database_url, TEST_SECRET_KEY)

    assert "0 secret(s) encrypted again with the first key, 2 stored in clear encrypted" in out
    assert not [row for row in stored_rows(app) if SECRET in row]


@pytest.mark.parametrize(
    ("keys", "status", "message"),
    [
        ("", 503, "CATALOG_SECRET_KEY is not set"),
        (new_key(), 503, "cannot be decrypted with the keys of CATALOG_SECRET_KEY"),
    ],
    ids=["missing", "wrong"],
)
def test_a_missing_or_wrong_key_is_a_clear_error_and_changes_nothing(
    world, app, tmp_path, keys, status, message
):
    world.shop_with_db()
    before = stored_rows(app)
    other = create_app(
        {
            **settings_of(app).as_mapping(),
            "SECRET_KEY": keys,
            "SECRET_KEY_FILE": str(tmp_path / "none"),
        }
    )

    response = other.test_client().patch(
        "/v1/environments/shop/apps/web",
        json={"parameters": {"admin_password": MASK}},
        headers=world.deployer.headers,
    )

    assert response.status_code == status, response.get_json()
    assert message in response.get_json()["detail"]
    assert stored_rows(app) == before
    other.extensions["catalog"]["engine"].dispose()
    other.extensions["catalog"]["read_engine"].dispose()


def test_a_malformed_key_stops_the_app_at_start_naming_it(app):
    with pytest.raises(SecretKeyError, match="key 2 of 2 is not a Fernet key"):
        create_app({**settings_of(app).as_mapping(), "SECRET_KEY": f"{TEST_SECRET_KEY},not-a-key"})
