"""Who may use a package name, and what a package's deletion leaves: a name held by another
tenant answers alike whoever holds it (hole 18)."""

from __future__ import annotations

import pytest

from tests.integration.test_packages_api import published, upload


@pytest.fixture
def acme(make_caller):
    return make_caller("acme", "publisher")


@pytest.fixture
def globex(make_caller):
    return make_caller("globex", "publisher")


@pytest.fixture
def admin(make_caller):
    return make_caller("admin", "admin")


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
