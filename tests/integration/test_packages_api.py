"""The packages API end to end on PostgreSQL and the filesystem blob store: upload, list,
search, show, change, yank, delete, categories, logo, download; F37; audit events."""

from __future__ import annotations

import hashlib
import io
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from catalog import settings_of
from catalog.models import AuditEvent, Package, PackageVersion, Tenant, package_categories
from tests.archives import make_zip
from tests.integration.conftest import manifest_doc, package_bytes
from tests.integration.test_authz import PNG

# -- helpers ------------------------------------------------------------------------------------


def upload(client, caller, name="org.acme.web", version="1.0.0", query="", **extra):
    return client.post(
        f"/v1/packages{query}",
        data=package_bytes(name, version, **extra),
        content_type="application/gzip",
        headers=caller.headers,
    )


def published(client, caller, name="org.acme.web", version="1.0.0", query="", **extra) -> dict:
    response = upload(client, caller, name, version, query, **extra)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def blob_path(app, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return Path(settings_of(app).blob_dir) / "sha256" / hexdigest[:2] / hexdigest[2:4] / hexdigest


def blob_files(app) -> set[Path]:
    return {p for p in (Path(settings_of(app).blob_dir) / "sha256").rglob("*") if p.is_file()}


def temp_files(app) -> list[Path]:
    return list((Path(settings_of(app).blob_dir) / "tmp").iterdir())


def session(app):
    return app.extensions["catalog"]["sessionmaker"]()


def audit_events(app) -> list[AuditEvent]:
    """The changes on the audit trail (refused writes are events of their own)."""
    with session(app) as s:
        query = select(AuditEvent).where(AuditEvent.result == "ok")
        return list(s.scalars(query.order_by(AuditEvent.id)))


def actions(app) -> list[str]:
    return [event.action for event in audit_events(app)]


def count(app, table_or_model) -> int:
    with session(app) as s:
        return s.scalar(select(func.count()).select_from(table_or_model))


@pytest.fixture
def acme(make_caller):
    return make_caller("acme", "publisher")


@pytest.fixture
def admin(make_caller):
    return make_caller("admin", "admin")


# -- upload -------------------------------------------------------------------------------------


def test_raw_upload_is_201_with_location_digest_and_size(client, app, acme):
    archive = package_bytes("org.acme.web", "1.0.0")

    response = client.post(
        "/v1/packages", data=archive, content_type="application/gzip", headers=acme.headers
    )

    assert response.status_code == 201
    body = response.get_json()
    digest = "sha256:" + hashlib.sha256(archive).hexdigest()
    assert response.headers["Location"] == "/v1/packages/org.acme.web/versions/1.0.0"
    assert (body["package"], body["version"]) == ("org.acme.web", "1.0.0")
    assert (body["digest"], body["size"], body["yanked"]) == (digest, len(archive), False)
    assert body["archive_url"] == "/v1/packages/org.acme.web/versions/1.0.0/archive"
    assert body["manifest"]["name"] == "org.acme.web"
    # The blob store holds the archive under sha256/ab/cd/<hex>, and nothing is left in tmp.
    assert blob_path(app, digest).read_bytes() == archive
    assert blob_files(app) == {blob_path(app, digest)}
    assert temp_files(app) == []
    shown = client.get(response.headers["Location"], headers=acme.headers)
    assert shown.status_code == 200
    assert shown.get_json()["digest"] == digest


def test_multipart_upload(client, app, acme):
    archive = package_bytes("org.acme.web", "1.0.0")

    response = client.post(
        "/v1/packages",
        data={"file": (io.BytesIO(archive), "web-1.0.0.tar.gz")},
        content_type="multipart/form-data",
        headers=acme.headers,
    )

    assert response.status_code == 201, response.get_json()
    assert response.headers["Location"] == "/v1/packages/org.acme.web/versions/1.0.0"
    assert response.get_json()["digest"] == "sha256:" + hashlib.sha256(archive).hexdigest()


def test_zip_upload_downloads_as_zip(client, app, acme):
    archive = make_zip([("manifest.yaml", yaml.safe_dump(manifest_doc("org.acme.zipped")))])

    response = client.post(
        "/v1/packages", data=archive, content_type="application/zip", headers=acme.headers
    )

    assert response.status_code == 201, response.get_json()
    download = client.get(response.get_json()["archive_url"], headers=acme.headers)
    assert download.status_code == 200
    assert download.mimetype == "application/zip"
    assert download.data == archive
    assert "org.acme.zipped-1.0.0.zip" in download.headers["Content-Disposition"]
    download.close()


def test_a_duplicate_version_is_409_and_keeps_the_original(client, app, acme):
    first = published(client, acme)
    before_events, before_blobs = actions(app), blob_files(app)

    again = upload(client, acme)
    other_bytes = upload(client, acme, description="same version, other bytes")

    assert again.status_code == other_bytes.status_code == 409
    assert "published already" in again.get_json()["detail"]
    assert actions(app) == before_events
    assert blob_files(app) == before_blobs
    assert count(app, PackageVersion) == 1
    download = client.get(first["archive_url"], headers=acme.headers)
    assert hashlib.sha256(download.data).hexdigest() == first["digest"].removeprefix("sha256:")
    download.close()


REFUSED_UPLOADS = [
    # (what is sent, content type, expected status, what the problem names)
    pytest.param(b"manifest: no", "text/plain", 415, None, id="wrong-content-type"),
    pytest.param(b"not an archive", "application/gzip", 400, None, id="not-an-archive"),
    pytest.param(
        package_bytes("Not A Name", "1.0.0"), "application/gzip", 400, "name", id="bad-name"
    ),
    pytest.param(
        package_bytes("org.acme.web", "1.0"), "application/gzip", 400, "version", id="bad-version"
    ),
    pytest.param(
        package_bytes("org.acme.web", "1.0.0", files={"logo.png": b"GIF89a"}),
        "application/gzip",
        400,
        "logo.png",
        id="logo-not-png",
    ),
]


@pytest.mark.parametrize(("data", "content_type", "status", "path"), REFUSED_UPLOADS)
def test_a_refused_upload_leaves_no_row_no_blob_no_event(
    client, app, acme, data, content_type, status, path
):
    before = actions(app)

    response = client.post(
        "/v1/packages", data=data, content_type=content_type, headers=acme.headers
    )

    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    if path:
        assert path in {e["path"] for e in response.get_json()["errors"]}
    assert count(app, Package) == count(app, PackageVersion) == 0
    assert blob_files(app) == set()
    assert temp_files(app) == []
    assert actions(app) == before


def test_multipart_without_a_file_field_is_400(client, acme):
    response = client.post(
        "/v1/packages",
        data={"archive": (io.BytesIO(package_bytes()), "x.tar.gz")},
        content_type="multipart/form-data",
        headers=acme.headers,
    )
    assert response.status_code == 400
    assert response.get_json()["errors"] == [
        {"path": "file", "message": "a multipart field 'file' is required"}
    ]


# -- listing and keyset pagination ------------------------------------------------------------

BULK = 45


def pages(client, headers, **params) -> list[list[str]]:
    """The names of every page of a listing, following next_cursor."""
    result, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/packages", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        result.append([item["name"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return result
        assert len(result) < 50, "the listing never ends"


def test_keyset_pagination_over_45_packages_has_no_duplicates_or_gaps(client, app, acme):
    names = [f"org.bulk.p{i:02d}" for i in range(BULK)]
    uploaded = random.Random(7).sample(names, len(names))  # creation order differs from names
    for name in uploaded:
        published(client, acme, name)
    touched = [uploaded[30], uploaded[2], uploaded[17]]
    for name in touched:
        response = client.patch(
            f"/v1/packages/{name}", json={"description": "touched"}, headers=acme.headers
        )
        assert response.status_code == 200
    untouched = [n for n in reversed(uploaded) if n not in touched]
    expected_orders = {
        "name": sorted(names),
        "-created": list(reversed(uploaded)),
        "-updated": list(reversed(touched)) + untouched,
    }

    for sort, expected in expected_orders.items():
        paged = pages(client, acme.headers, sort=sort, limit=20)

        assert [len(page) for page in paged] == [20, 20, 5], sort
        flat = [name for page in paged for name in page]
        assert flat == expected, sort
        one_page = pages(client, acme.headers, sort=sort, limit=200)
        assert one_page == [expected], sort

    assert pages(client, acme.headers) == [
        sorted(names)[:20],
        sorted(names)[20:40],
        sorted(names)[40:],
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 201},
        {"sort": "size"},
        {"type": "plugin"},
        {"cursor": "not-a-cursor"},
        {"cursor": "W10"},  # a valid encoding of a cursor of the wrong shape
    ],
)
def test_bad_list_parameters_are_400(client, acme, query):
    response = client.get("/v1/packages", query_string=query, headers=acme.headers)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_a_cursor_of_one_sort_is_refused_by_another(client, acme):
    for i in range(3):
        published(client, acme, f"org.acme.p{i}")
    cursor = client.get("/v1/packages?limit=1&sort=name", headers=acme.headers).get_json()[
        "next_cursor"
    ]

    response = client.get(
        "/v1/packages",
        query_string={"limit": 1, "sort": "-created", "cursor": cursor},
        headers=acme.headers,
    )

    assert response.status_code == 400


@pytest.fixture
def searchable(client, admin, acme, make_caller):
    """A few packages of two tenants with distinct words, tags, types and categories."""
    globex = make_caller("globex", "publisher")
    for category in ("databases", "cms"):
        assert (
            client.post(
                "/v1/categories", json={"name": category}, headers=admin.headers
            ).status_code
            == 201
        )
    rows = [
        # (owner, name, query, manifest extras)
        (
            acme,
            "org.acme.wordpress",
            "?categories=cms",
            {"tags": ["cms", "php"], "description": "Blog engine"},
        ),
        (
            acme,
            "org.acme.mysql",
            "?categories=databases",
            {"tags": ["sql"], "description": "Relational DB"},
        ),
        (
            acme,
            "org.acme.redis",
            "?categories=databases",
            {"tags": ["cache", "kv"], "description": "In-memory store"},
        ),
        (
            acme,
            "org.acme.libssl",
            "",
            {
                "type": "library",
                "services": {},
                "tags": ["crypto"],
                "description": "Shared TLS files",
            },
        ),
        (acme, "org.acme.percent", "", {"tags": ["odd"], "description": "Handles 100%_of load"}),
        (
            globex,
            "org.globex.postgres",
            "?categories=databases",
            {"tags": ["sql"], "description": "Relational DB"},
        ),
    ]
    for owner, name, query, extras in rows:
        published(client, owner, name, "1.0.0", query, **extras)
    return {"acme": acme, "globex": globex}


SEARCHES = [
    # (query, names acme's publisher sees, in name order)
    (
        {},
        [
            "org.acme.libssl",
            "org.acme.mysql",
            "org.acme.percent",
            "org.acme.redis",
            "org.acme.wordpress",
        ],
    ),
    ({"q": "relational"}, ["org.acme.mysql"]),
    ({"q": "RELATIONAL db"}, ["org.acme.mysql"]),  # case-insensitive, every word must match
    ({"q": "relational blog"}, []),
    ({"q": "wordpress"}, ["org.acme.wordpress"]),  # the name is searched
    ({"q": "php"}, ["org.acme.wordpress"]),  # and the tags
    ({"q": "%"}, ["org.acme.percent"]),  # LIKE wildcards are literal
    ({"q": "_"}, ["org.acme.percent"]),
    ({"tag": "sql"}, ["org.acme.mysql"]),
    ({"tag": "SQL"}, ["org.acme.mysql"]),
    ({"tag": "sq"}, []),  # a tag matches whole
    ({"tag": "kv"}, ["org.acme.redis"]),
    ({"category": "databases"}, ["org.acme.mysql", "org.acme.redis"]),
    ({"category": "cms"}, ["org.acme.wordpress"]),
    ({"category": "nothing"}, []),
    ({"type": "library"}, ["org.acme.libssl"]),
    ({"type": "application", "tag": "cache"}, ["org.acme.redis"]),
    ({"owned": "true", "category": "databases"}, ["org.acme.mysql", "org.acme.redis"]),
    ({"owned": "false", "q": "db"}, ["org.acme.mysql"]),
]


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_search_and_filters(client, searchable, query, expected):
    response = client.get("/v1/packages", query_string=query, headers=searchable["acme"].headers)

    assert response.status_code == 200
    assert [item["name"] for item in response.get_json()["items"]] == expected


def test_list_items_carry_the_package_summary(client, searchable):
    response = client.get("/v1/packages?q=wordpress", headers=searchable["acme"].headers)
    (item,) = response.get_json()["items"]
    assert item["owner"] == "acme"
    assert item["visibility"] == "private"
    assert item["enabled"] is True
    assert item["type"] == "application"
    assert item["tags"] == ["cms", "php"]
    assert item["categories"] == ["cms"]
    assert item["latest_version"] == "1.0.0"
    assert item["has_logo"] is False


def test_listings_and_token_lookups_are_planned_once_per_connection(app, client, searchable):
    """PostgreSQL keeps their plans on the connection; a new connection prepares them again."""
    engine = app.extensions["catalog"]["read_engine"]
    headers = searchable["acme"].headers

    def listed() -> list[str]:
        response = client.get("/v1/packages", query_string={"tag": "sql"}, headers=headers)
        assert response.status_code == 200
        return [item["name"] for item in response.get_json()["items"]]

    assert listed() == listed() == ["org.acme.mysql"]
    with engine.connect() as connection:  # the one connection the requests used
        prepared = connection.exec_driver_sql("SELECT name FROM pg_prepared_statements")
        assert {"catalog_token_lookup", "catalog_list_name_t"} <= set(prepared.scalars())
        connection.invalidate()  # as when the server restarted
    assert listed() == ["org.acme.mysql"]

    with engine.connect() as connection:  # a pooler's DISCARD ALL, unknown to the API
        connection.exec_driver_sql("DEALLOCATE ALL")
    failed = client.get("/v1/packages", headers=headers)
    assert failed.status_code == 500, "the connection's record of its statements was wrong"
    assert listed() == ["org.acme.mysql"], "the next request runs on a connection prepared anew"


# -- show, versions ---------------------------------------------------------------------------


def test_show_lists_versions_newest_first_by_semver(client, acme):
    for version in ("1.0.0", "1.10.0", "1.2.0"):
        published(client, acme, version=version)

    shown = client.get("/v1/packages/org.acme.web", headers=acme.headers).get_json()
    versions = client.get("/v1/packages/org.acme.web/versions", headers=acme.headers).get_json()
    one = client.get("/v1/packages/org.acme.web/versions/1.2.0", headers=acme.headers)
    missing = client.get("/v1/packages/org.acme.web/versions/9.9.9", headers=acme.headers)

    assert [v["version"] for v in shown["versions"]] == ["1.10.0", "1.2.0", "1.0.0"]
    assert [v["version"] for v in versions["items"]] == ["1.10.0", "1.2.0", "1.0.0"]
    assert versions["next_cursor"] is None
    assert shown["latest_version"] == "1.10.0"
    assert one.status_code == 200
    assert one.get_json()["manifest"]["version"] == "1.2.0"
    assert one.get_json()["parameters"] == {"type": "object", "properties": {}}
    assert missing.status_code == 404


# -- changing metadata ------------------------------------------------------------------------


def test_patch_metadata_changes_the_row_and_the_search_index(client, app, admin, acme):
    assert (
        client.post("/v1/categories", json={"name": "cms"}, headers=admin.headers).status_code
        == 201
    )
    published(client, acme)
    changes = {
        "title": "Web Server",
        "description": "Serves zebras",
        "tags": ["http", "static"],
        "categories": ["cms"],
        "enabled": False,
    }

    response = client.patch("/v1/packages/org.acme.web", json=changes, headers=acme.headers)

    assert response.status_code == 200, response.get_json()
    shown = client.get("/v1/packages/org.acme.web", headers=acme.headers).get_json()
    for field, value in changes.items():
        assert response.get_json()[field] == shown[field] == value, field
    found = client.get("/v1/packages?q=zebras&tag=static&category=cms", headers=acme.headers)
    assert [i["name"] for i in found.get_json()["items"]] == ["org.acme.web"]
    event = audit_events(app)[-1]
    assert (event.action, event.object_id, event.actor) == (
        "package.update",
        "org.acme.web",
        acme.token_id,
    )
    assert event.detail == {"fields": sorted(changes)}


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"categories": ["no-such-category"]}, "categories[0]"),
        ({"tags": ["Not A Tag"]}, "tags[0]"),
        ({"visibility": "everyone"}, "visibility"),
        ({"enabled": "maybe"}, "enabled"),
        ({"description": "ok", "categories": ["no-such-category"]}, "categories[0]"),
    ],
)
def test_an_invalid_patch_is_400_and_changes_nothing(client, app, acme, changes, path):
    published(client, acme)
    before, before_events = (
        client.get("/v1/packages/org.acme.web", headers=acme.headers).get_json(),
        actions(app),
    )

    response = client.patch("/v1/packages/org.acme.web", json=changes, headers=acme.headers)

    assert response.status_code == 400
    assert path in {e["path"] for e in response.get_json()["errors"]}
    assert client.get("/v1/packages/org.acme.web", headers=acme.headers).get_json() == before
    assert actions(app) == before_events


# -- F37: fields a client never sets ------------------------------------------------------------

FORBIDDEN_PACKAGE_FIELDS = [
    ("tenant", "globex"),
    ("tenant_id", "0" * 32),
    ("owner", "globex"),
    ("status", "ready"),
    ("revision", 7),
    ("digest", "sha256:" + "0" * 64),
    ("name", "org.globex.web"),
    ("version", "9.9.9"),
    ("latest_version", "9.9.9"),
    ("id", "0" * 32),
    ("created_at", "2000-01-01T00:00:00Z"),
]


@pytest.mark.parametrize("with_valid_field", [False, True], ids=["alone", "beside-a-valid-one"])
@pytest.mark.parametrize(("field", "value"), FORBIDDEN_PACKAGE_FIELDS)
def test_f37_package_patch_naming_a_server_field_is_400_and_the_row_unchanged(
    client, app, acme, make_caller, field, value, with_valid_field
):
    make_caller("globex", "publisher")
    published(client, acme)
    url = "/v1/packages/org.acme.web"
    before, before_events = client.get(url, headers=acme.headers).get_json(), actions(app)
    body = {field: value, **({"description": "changed"} if with_valid_field else {})}

    response = client.patch(url, json=body, headers=acme.headers)

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert [e["path"] for e in response.get_json()["errors"]] == [field]
    assert client.get(url, headers=acme.headers).get_json() == before
    assert actions(app) == before_events
    with session(app) as s:
        row = s.scalar(select(Package).where(Package.name == "org.acme.web"))
        owner = s.scalar(select(Tenant.name).where(Tenant.id == row.tenant_id))
        assert (owner, row.latest_version, row.description) == ("acme", "1.0.0", "A web server")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("digest", "sha256:" + "0" * 64),
        ("version", "9.9.9"),
        ("size", 1),
        ("manifest", {}),
        ("tenant", "globex"),
        ("status", "yanked"),
    ],
)
def test_f37_version_patch_naming_a_server_field_is_400_and_the_row_unchanged(
    client, app, acme, field, value
):
    first = published(client, acme)
    url = "/v1/packages/org.acme.web/versions/1.0.0"
    before_events = actions(app)

    response = client.patch(url, json={"yanked": True, field: value}, headers=acme.headers)

    assert response.status_code == 400
    assert [e["path"] for e in response.get_json()["errors"]] == [field]
    after = client.get(url, headers=acme.headers).get_json()
    assert (after["yanked"], after["digest"], after["size"]) == (
        False,
        first["digest"],
        first["size"],
    )
    assert actions(app) == before_events


# -- yank, unyank -------------------------------------------------------------------------------


def test_yank_and_unyank_move_latest_version(client, app, acme):
    for version in ("1.0.0", "1.2.0", "1.10.0"):
        published(client, acme, version=version)
    url = "/v1/packages/org.acme.web"
    steps = [
        # (version, yanked, latest_version afterwards)
        ("1.10.0", True, "1.2.0"),
        ("1.2.0", True, "1.0.0"),
        ("1.10.0", False, "1.10.0"),
        ("1.10.0", True, "1.0.0"),
        ("1.0.0", True, None),
        ("1.2.0", False, "1.2.0"),
    ]
    for version, yanked, latest in steps:
        response = client.patch(
            f"{url}/versions/{version}", json={"yanked": yanked}, headers=acme.headers
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["yanked"] is yanked
        shown = client.get(url, headers=acme.headers).get_json()
        assert shown["latest_version"] == latest, (version, yanked)
        flags = {v["version"]: v["yanked"] for v in shown["versions"]}
        assert flags[version] is yanked
    # A yanked version is still downloadable where pinned.
    download = client.get(f"{url}/versions/1.0.0/archive", headers=acme.headers)
    assert download.status_code == 200
    download.close()
    assert actions(app)[-6:] == [
        "package.yank",
        "package.yank",
        "package.unyank",
        "package.yank",
        "package.yank",
        "package.unyank",
    ]


# -- deleting versions and packages -------------------------------------------------------------


def test_deleting_a_version_removes_its_row_and_blob_but_never_the_last(client, app, acme):
    versions = {v: published(client, acme, version=v) for v in ("1.0.0", "1.2.0", "1.10.0")}
    url = "/v1/packages/org.acme.web"

    assert client.delete(f"{url}/versions/1.2.0", headers=acme.headers).status_code == 204
    assert not blob_path(app, versions["1.2.0"]["digest"]).exists()
    assert blob_path(app, versions["1.0.0"]["digest"]).exists()
    assert client.get(f"{url}/versions/1.2.0", headers=acme.headers).status_code == 404
    shown = client.get(url, headers=acme.headers).get_json()
    assert [v["version"] for v in shown["versions"]] == ["1.10.0", "1.0.0"]

    assert client.delete(f"{url}/versions/1.10.0", headers=acme.headers).status_code == 204
    assert client.get(url, headers=acme.headers).get_json()["latest_version"] == "1.0.0"

    last = client.delete(f"{url}/versions/1.0.0", headers=acme.headers)
    assert last.status_code == 409
    assert "only version" in last.get_json()["detail"]
    assert blob_path(app, versions["1.0.0"]["digest"]).exists()
    assert count(app, PackageVersion) == 1
    assert actions(app).count("package.version.delete") == 2


def test_deleting_a_package_removes_its_rows_and_blob_files(client, app, admin, acme):
    assert (
        client.post("/v1/categories", json={"name": "cms"}, headers=admin.headers).status_code
        == 201
    )
    doomed = [
        published(client, acme, "org.acme.web", v, "?categories=cms", files={"logo.png": PNG})
        for v in ("1.0.0", "2.0.0")
    ]
    # Another package with the same logo: the shared logo blob must survive.
    kept = published(client, acme, "org.acme.kept", files={"logo.png": PNG})
    logo_blob = blob_path(app, "sha256:" + hashlib.sha256(PNG).hexdigest())
    assert logo_blob.is_file()
    assert len(blob_files(app)) == 4  # three archives and one logo

    response = client.delete("/v1/packages/org.acme.web", headers=acme.headers)

    assert response.status_code == 204
    assert client.get("/v1/packages/org.acme.web", headers=acme.headers).status_code == 404
    for version in doomed:
        assert not blob_path(app, version["digest"]).exists()
    assert blob_files(app) == {blob_path(app, kept["digest"]), logo_blob}
    assert count(app, Package) == 1
    assert count(app, PackageVersion) == 1
    assert count(app, package_categories) == 0
    assert actions(app)[-1] == "package.delete"

    # The last package that uses the logo takes it along.
    assert client.delete("/v1/packages/org.acme.kept", headers=acme.headers).status_code == 204
    assert blob_files(app) == set()


def test_a_deleted_name_can_be_published_again(client, acme):
    published(client, acme)
    assert client.delete("/v1/packages/org.acme.web", headers=acme.headers).status_code == 204
    published(client, acme)


# -- categories ---------------------------------------------------------------------------------


def test_categories_create_list_filter_and_delete(client, app, admin, acme):
    created = client.post(
        "/v1/categories", json={"name": "databases", "title": "Databases"}, headers=admin.headers
    )
    assert created.status_code == 201
    assert created.get_json() == {"name": "databases", "title": "Databases"}
    assert (
        client.post("/v1/categories", json={"name": "cms"}, headers=admin.headers).status_code
        == 201
    )
    assert (
        client.post("/v1/categories", json={"name": "databases"}, headers=admin.headers).status_code
        == 409
    )
    assert (
        client.post("/v1/categories", json={"name": "Not Valid"}, headers=admin.headers).status_code
        == 400
    )
    listed = client.get("/v1/categories", headers=acme.headers).get_json()
    assert [c["name"] for c in listed["items"]] == ["cms", "databases"]

    published(client, acme, "org.acme.mysql", query="?categories=databases,cms")
    unknown = upload(client, acme, "org.acme.other", query="?categories=nope")
    assert unknown.status_code == 400
    assert unknown.get_json()["errors"] == [
        {"path": "categories[0]", "message": "no category 'nope'"}
    ]
    assert count(app, Package) == 1

    def names(category):
        response = client.get(f"/v1/packages?category={category}", headers=acme.headers)
        return [i["name"] for i in response.get_json()["items"]]

    assert names("databases") == ["org.acme.mysql"]
    assert client.delete("/v1/categories/databases", headers=admin.headers).status_code == 204
    assert client.delete("/v1/categories/databases", headers=admin.headers).status_code == 404
    assert names("databases") == []
    shown = client.get("/v1/packages/org.acme.mysql", headers=acme.headers).get_json()
    assert shown["categories"] == ["cms"]
    assert actions(app).count("category.create") == 2
    assert actions(app).count("category.delete") == 1


# -- logo and download --------------------------------------------------------------------------


def test_the_logo_is_served_as_png(client, acme):
    published(client, acme, files={"logo.png": PNG})
    published(client, acme, "org.acme.plain")

    logo = client.get("/v1/packages/org.acme.web/logo", headers=acme.headers)
    shown = client.get("/v1/packages/org.acme.web", headers=acme.headers).get_json()
    none = client.get("/v1/packages/org.acme.plain/logo", headers=acme.headers)

    assert logo.status_code == 200
    assert logo.mimetype == "image/png"
    assert logo.data == PNG
    assert logo.headers["ETag"] == f'"{hashlib.sha256(PNG).hexdigest()}"'
    logo.close()
    assert shown["has_logo"] is True
    assert none.status_code == 404


def test_download_is_byte_identical_with_the_digest_as_etag(client, acme):
    archive = package_bytes("org.acme.web", "1.0.0", files={"files/app.conf.j2": b"x" * 5000})
    created = client.post(
        "/v1/packages", data=archive, content_type="application/gzip", headers=acme.headers
    ).get_json()
    hexdigest = hashlib.sha256(archive).hexdigest()
    url = created["archive_url"]

    download = client.get(url, headers=acme.headers)
    assert download.status_code == 200
    assert download.data == archive
    assert created["digest"] == f"sha256:{hashlib.sha256(download.data).hexdigest()}"
    assert download.mimetype == "application/gzip"
    assert download.headers["ETag"] == f'"{hexdigest}"'
    assert download.headers["Digest"] == f"sha-256={hexdigest}"
    assert download.headers["Content-Length"] == str(len(archive))
    assert "filename=org.acme.web-1.0.0.tar.gz" in download.headers["Content-Disposition"]
    download.close()

    cached = client.get(url, headers={**acme.headers, "If-None-Match": f'"{hexdigest}"'})
    assert cached.status_code == 304
    assert cached.data == b""
    cached.close()
    stale = client.get(url, headers={**acme.headers, "If-None-Match": '"something-else"'})
    assert stale.status_code == 200
    assert stale.data == archive
    stale.close()


# -- audit --------------------------------------------------------------------------------------


def test_one_audit_event_per_successful_change_and_none_for_refusals(client, app, acme):
    start = len(actions(app))
    url = "/v1/packages/org.acme.web"
    flow = [
        # (method, path, options, expected status, audit action or None)
        ("POST", "/v1/packages", {"data": package_bytes(version="1.0.0")}, 201, "package.publish"),
        ("POST", "/v1/packages", {"data": package_bytes(version="1.0.0")}, 409, None),
        ("POST", "/v1/packages", {"data": package_bytes(version="1.1.0")}, 201, "package.publish"),
        ("PATCH", url, {"json": {"description": "new"}}, 200, "package.update"),
        ("PATCH", url, {"json": {"tenant": "globex"}}, 400, None),
        ("PATCH", url, {"json": {"visibility": "public"}}, 403, None),
        ("PATCH", f"{url}/versions/1.1.0", {"json": {"yanked": True}}, 200, "package.yank"),
        ("PATCH", f"{url}/versions/1.1.0", {"json": {"yanked": False}}, 200, "package.unyank"),
        ("DELETE", f"{url}/versions/1.0.0", {}, 204, "package.version.delete"),
        ("DELETE", f"{url}/versions/1.1.0", {}, 409, None),
        ("DELETE", f"{url}/versions/9.9.9", {}, 404, None),
        ("GET", url, {}, 200, None),
        ("DELETE", url, {}, 204, "package.delete"),
        ("DELETE", url, {}, 404, None),
    ]
    expected = []
    for method, path, options, status, action in flow:
        if "data" in options:
            options = {**options, "content_type": "application/gzip"}
        response = client.open(path, method=method, headers=acme.headers, **options)
        assert response.status_code == status, (method, path, response.get_json())
        if action:
            expected.append(action)
        assert actions(app)[start:] == expected, (method, path)

    with session(app) as s:
        acme_id = s.scalar(select(Tenant.id).where(Tenant.name == "acme"))
    events = audit_events(app)[start:]
    assert {(e.actor, e.tenant_id, e.result) for e in events} == {(acme.token_id, acme_id, "ok")}
    assert [e.object_id for e in events] == [
        "org.acme.web@1.0.0",
        "org.acme.web@1.1.0",
        "org.acme.web",
        "org.acme.web@1.1.0",
        "org.acme.web@1.1.0",
        "org.acme.web@1.0.0",
        "org.acme.web",
    ]


def test_an_upload_older_than_a_yanked_newest_becomes_the_latest(client, acme):
    published(client, acme, version="1.0.0", title="One")
    published(client, acme, version="2.0.0", title="Two")
    client.patch(
        "/v1/packages/org.acme.web/versions/2.0.0", json={"yanked": True}, headers=acme.headers
    )
    published(client, acme, version="1.5.0", title="One and a half")
    published(client, acme, version="1.2.0", title="One point two")

    shown = client.get("/v1/packages/org.acme.web", headers=acme.headers).get_json()

    assert (shown["latest_version"], shown["title"]) == ("1.5.0", "One and a half")


def test_concurrent_uploads_of_one_package_leave_its_newest_version_as_latest(app, acme):
    first = app.test_client()
    published(first, acme, version="1.0.0", title="v1.0.0")
    versions = [f"1.{minor}.0" for minor in range(1, 9)]
    random.Random(7).shuffle(versions)  # the newest is not the last to start

    with ThreadPoolExecutor(len(versions)) as pool:
        answers = list(pool.map(
            lambda v: upload(app.test_client(), acme, "org.acme.web", v, title=f"v{v}"), versions
        ))  # fmt: skip

    assert sorted(a.status_code for a in answers) == [201] * len(versions)
    shown = first.get("/v1/packages/org.acme.web", headers=acme.headers).get_json()
    assert (shown["latest_version"], shown["title"]) == ("1.8.0", "v1.8.0")
    assert len(shown["versions"]) == 9


def test_an_older_upload_does_not_rewrite_the_package_summary(client, acme):
    published(client, acme, version="2.0.0", title="New", description="new text", tags=["new"])
    published(client, acme, version="1.5.0", title="Old", description="old text", tags=["old"])

    shown = client.get("/v1/packages/org.acme.web", headers=acme.headers).get_json()

    assert (shown["title"], shown["description"], shown["tags"]) == ("New", "new text", ["new"])
    assert shown["latest_version"] == "2.0.0"
    assert [v["version"] for v in shown["versions"]] == ["2.0.0", "1.5.0"]
