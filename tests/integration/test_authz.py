"""F36: who may do what, route by route, as one explicit table per object.

Seven callers meet every route and method:

    owner            publisher of tenant acme, which owns the package
    other_publisher  publisher of tenant globex
    anonymous        no Authorization header
    viewer           viewer of acme
    deployer         deployer of acme
    other_viewer     viewer of globex
    admin            admin (tenant admin)

Every cell is an exact status code. On top of the code, each cell checks that a refused
request changed nothing (same package as the admin sees it, no new blob, no audit event of
a change), that a write refused with 401, 403, 409 or 429 wrote one audit event of the
refusal, and that a successful mutating request wrote exactly one audit event.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from catalog import settings_of
from catalog.models import AuditEvent
from catalog.services.audit import REFUSALS
from tests.integration.conftest import package_bytes

CALLERS = (
    "owner",
    "other_publisher",
    "anonymous",
    "viewer",
    "deployer",
    "other_viewer",
    "admin",
)
PKG = "org.acme.web"
MISSING = "org.nowhere.gone"


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00\x00\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = tiny_png()


@dataclass(frozen=True)
class Req:
    """One request of the matrix; `{P}` in the path is the package's name."""

    method: str
    path: str
    json: dict | None = None
    upload: bytes | None = None
    mutating: bool = False


# Every route and method on one package (two versions, a logo).
PACKAGE_REQUESTS = {
    "show": Req("GET", "/v1/packages/{P}"),
    "versions": Req("GET", "/v1/packages/{P}/versions"),
    "version": Req("GET", "/v1/packages/{P}/versions/1.0.0"),
    "archive": Req("GET", "/v1/packages/{P}/versions/1.0.0/archive"),
    "logo": Req("GET", "/v1/packages/{P}/logo"),
    "patch": Req("PATCH", "/v1/packages/{P}", json={"description": "changed"}, mutating=True),
    "disable": Req("PATCH", "/v1/packages/{P}", json={"enabled": False}, mutating=True),
    "make_public": Req("PATCH", "/v1/packages/{P}", json={"visibility": "public"}, mutating=True),
    "make_private": Req("PATCH", "/v1/packages/{P}", json={"visibility": "private"}, mutating=True),
    "yank": Req("PATCH", "/v1/packages/{P}/versions/1.0.0", json={"yanked": True}, mutating=True),
    "delete_version": Req("DELETE", "/v1/packages/{P}/versions/1.0.0", mutating=True),
    "delete": Req("DELETE", "/v1/packages/{P}", mutating=True),
    "upload": Req("POST", "/v1/packages", upload=package_bytes(PKG, "2.0.0"), mutating=True),
}


def parse_table(text: str) -> dict[tuple[str, str], int]:
    """A whitespace table: header row of callers, then `request code code ...` rows."""
    lines = [line.split() for line in text.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert tuple(header[1:]) == CALLERS, header
    table = {}
    for request, *codes in rows:
        assert len(codes) == len(CALLERS), request
        for caller, code in zip(CALLERS, codes, strict=True):
            table[(request, caller)] = int(code)
    return table


# A PRIVATE package of acme: other tenants see a 404 exactly as for a missing package,
# the owner's viewer and deployer may read but not change, only an admin makes it public.
PRIVATE = parse_table("""
request         owner  other_publisher  anonymous  viewer  deployer  other_viewer  admin
show             200        404            401      200      200         404        200
versions         200        404            401      200      200         404        200
version          200        404            401      200      200         404        200
archive          200        404            401      200      200         404        200
logo             200        404            401      200      200         404        200
patch            200        404            401      403      403         404        200
disable          200        404            401      403      403         404        200
make_public      403        404            401      403      403         404        200
make_private     200        404            401      403      403         404        200
yank             200        404            401      403      403         404        200
delete_version   204        404            401      403      403         404        204
delete           204        404            401      403      403         404        204
upload           201        409            401      403      403         403        201
""")

# The same package made PUBLIC by an admin: every token reads it, only its owner and an
# admin change it; a non-owner sees it, so a change is 403 (an upload of the name, 409).
PUBLIC = parse_table("""
request         owner  other_publisher  anonymous  viewer  deployer  other_viewer  admin
show             200        200            401      200      200         200        200
versions         200        200            401      200      200         200        200
version          200        200            401      200      200         200        200
archive          200        200            401      200      200         200        200
logo             200        200            401      200      200         200        200
patch            200        403            401      403      403         403        200
disable          200        403            401      403      403         403        200
make_public      403        403            401      403      403         403        200
make_private     200        403            401      403      403         403        200
yank             200        403            401      403      403         403        200
delete_version   204        403            401      403      403         403        204
delete           204        403            401      403      403         403        204
upload           201        409            401      403      403         403        201
""")

TABLES = {"private": PRIVATE, "public": PUBLIC}
assert set(PRIVATE) == set(PUBLIC) == {(r, c) for r in PACKAGE_REQUESTS for c in CALLERS}


@dataclass
class World:
    client: object
    app: object
    callers: dict

    def headers(self, caller: str) -> dict[str, str]:
        found = self.callers[caller]
        return found.headers if found is not None else {}

    def send(self, caller: str, req: Req, name: str = PKG, **extra_headers):
        headers = {**self.headers(caller), **extra_headers}
        path = req.path.replace("{P}", name)
        if req.upload is not None:
            return self.client.post(
                path, data=req.upload, content_type="application/gzip", headers=headers
            )
        return self.client.open(path, method=req.method, json=req.json, headers=headers)

    def audit_count(self) -> int:
        """Audit events of changes made."""
        return self._audit_events(AuditEvent.result == "ok")

    def refusal_count(self) -> int:
        """Audit events of refused writes."""
        return self._audit_events(AuditEvent.result != "ok")

    def _audit_events(self, condition) -> int:
        with self.app.extensions["catalog"]["sessionmaker"]() as session:
            return session.scalar(select(func.count()).select_from(AuditEvent).where(condition))

    def blob_files(self) -> set[Path]:
        root = Path(settings_of(self.app).blob_dir) / "sha256"
        return {p for p in root.rglob("*") if p.is_file()}

    def admin_view(self) -> tuple[int, object]:
        """The package (and its versions) as an admin sees it: the row's state."""
        response = self.client.get(f"/v1/packages/{PKG}", headers=self.headers("admin"))
        return response.status_code, response.get_json()


def setup_world(client, app, make_caller, visibility: str) -> World:
    callers = {
        "owner": make_caller("acme", "publisher"),
        "other_publisher": make_caller("globex", "publisher"),
        "anonymous": None,
        "viewer": make_caller("acme", "viewer"),
        "deployer": make_caller("acme", "deployer"),
        "other_viewer": make_caller("globex", "viewer"),
        "admin": make_caller("admin", "admin"),
    }
    world = World(client, app, callers)
    owner = callers["owner"].headers
    for version, files in (("1.0.0", {"logo.png": PNG}), ("1.1.0", {})):
        response = client.post(
            "/v1/packages",
            data=package_bytes(PKG, version, files=files),
            content_type="application/gzip",
            headers=owner,
        )
        assert response.status_code == 201, response.get_json()
    if visibility == "public":
        response = client.patch(
            f"/v1/packages/{PKG}", json={"visibility": "public"}, headers=world.headers("admin")
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["visibility"] == "public"
    return world


MATRIX = [
    pytest.param(
        visibility,
        request,
        caller,
        TABLES[visibility][(request, caller)],
        id=f"{visibility}-{request}-{caller}",
    )
    for visibility in TABLES
    for request in PACKAGE_REQUESTS
    for caller in CALLERS
]


@pytest.mark.parametrize(("visibility", "request_name", "caller", "expected"), MATRIX)
def test_package_matrix(client, app, make_caller, visibility, request_name, caller, expected):
    world = setup_world(client, app, make_caller, visibility)
    req = PACKAGE_REQUESTS[request_name]
    before_audit, before_refusals, before_blobs, before_row = (
        world.audit_count(),
        world.refusal_count(),
        world.blob_files(),
        world.admin_view(),
    )

    response = world.send(caller, req)
    response.close()

    assert response.status_code == expected, response.get_data(as_text=True)
    succeeded = 200 <= expected < 300
    if expected >= 400:
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["status"] == expected
    if expected == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # One audit event per successful change, none for a read or a refusal; one refusal
    # event per write refused with 401, 403, 409 or 429 (a 404 hides what it refused).
    assert world.audit_count() == before_audit + (1 if succeeded and req.mutating else 0)
    refused = req.mutating and expected in REFUSALS
    assert world.refusal_count() == before_refusals + (1 if refused else 0)
    if not (succeeded and req.mutating):
        assert world.admin_view() == before_row, "a refused request changed the package"
        assert world.blob_files() == before_blobs, "a refused request stored or removed a blob"


# -- another tenant's private package is indistinguishable from a missing one ----------------


@pytest.mark.parametrize("caller", ["other_publisher", "other_viewer"])
@pytest.mark.parametrize("request_name", [r for r in PACKAGE_REQUESTS if r != "upload"])
def test_foreign_private_package_answers_exactly_like_a_missing_one(
    client, app, make_caller, request_name, caller
):
    world = setup_world(client, app, make_caller, "private")
    req = PACKAGE_REQUESTS[request_name]

    hidden = world.send(caller, req, PKG)
    missing = world.send(caller, req, MISSING)

    assert hidden.status_code == missing.status_code == 404
    assert hidden.headers["Content-Type"] == missing.headers["Content-Type"]
    assert sorted(hidden.headers.keys()) == sorted(missing.headers.keys())
    assert hidden.get_data(as_text=True) == missing.get_data(as_text=True).replace(MISSING, PKG)


def test_a_disabled_public_package_is_hidden_from_other_tenants(client, app, make_caller):
    world = setup_world(client, app, make_caller, "public")
    response = world.send("owner", PACKAGE_REQUESTS["disable"])
    assert response.status_code == 200

    for caller, expected in (
        ("owner", 200),
        ("viewer", 200),
        ("admin", 200),
        ("other_publisher", 404),
        ("other_viewer", 404),
    ):
        assert world.send(caller, PACKAGE_REQUESTS["show"]).status_code == expected, caller


# Uploading a new package straight to public visibility needs an admin.
PUBLIC_UPLOAD = {
    "owner": 403,
    "other_publisher": 403,
    "anonymous": 401,
    "viewer": 403,
    "deployer": 403,
    "other_viewer": 403,
    "admin": 201,
}


@pytest.mark.parametrize(("caller", "expected"), PUBLIC_UPLOAD.items())
def test_only_an_admin_uploads_a_public_package(client, app, make_caller, caller, expected):
    world = setup_world(client, app, make_caller, "private")
    before_audit, before_blobs = world.audit_count(), world.blob_files()
    req = Req("POST", "/v1/packages?visibility=public", upload=package_bytes("org.acme.new"))

    response = world.send(caller, req)

    assert response.status_code == expected, response.get_json()
    if expected == 201:
        shown = client.get("/v1/packages/org.acme.new", headers=world.headers("other_viewer"))
        assert shown.get_json()["visibility"] == "public"
    else:
        assert world.audit_count() == before_audit
        assert world.blob_files() == before_blobs


# -- every other route: tenants, tokens, categories, health, metrics, the OpenAPI document -----

OTHER_REQUESTS = {
    "health": Req("GET", "/v1/health"),
    "openapi": Req("GET", "/v1/openapi.json"),
    "metrics": Req("GET", "/v1/metrics"),
    "audit": Req("GET", "/v1/audit"),
    "list_packages": Req("GET", "/v1/packages"),
    "list_categories": Req("GET", "/v1/categories"),
    "create_category": Req("POST", "/v1/categories", json={"name": "new-one"}, mutating=True),
    "delete_category": Req("DELETE", "/v1/categories/databases", mutating=True),
    "list_tenants": Req("GET", "/v1/tenants"),
    "create_tenant": Req("POST", "/v1/tenants", json={"name": "initech"}, mutating=True),
    "list_tokens": Req("GET", "/v1/tokens"),
    "create_token": Req(
        "POST", "/v1/tokens", json={"tenant": "acme", "role": "viewer"}, mutating=True
    ),
    # {victim}: a deployer token of acme that no caller of the matrix holds.
    "revoke_other_token": Req("DELETE", "/v1/tokens/{victim}", mutating=True),
    # {self}: the caller's own token (the victim's for anonymous, who has none).
    "revoke_own_token": Req("DELETE", "/v1/tokens/{self}", mutating=True),
}

OTHERS = parse_table("""
request             owner  other_publisher  anonymous  viewer  deployer  other_viewer  admin
health               200        200            200      200      200         200        200
openapi              200        200            200      200      200         200        200
metrics              403        403            401      403      403         403        200
audit                200        200            401      403      403         403        200
list_packages        200        200            401      200      200         200        200
list_categories      200        200            401      200      200         200        200
create_category      403        403            401      403      403         403        201
delete_category      403        403            401      403      403         403        204
list_tenants         200        200            401      200      200         200        200
create_tenant        403        403            401      403      403         403        201
list_tokens          200        200            401      200      200         200        200
create_token         403        403            401      403      403         403        201
revoke_other_token   404        404            401      404      404         404        204
revoke_own_token     204        204            401      204      204         204        204
""")
assert set(OTHERS) == {(r, c) for r in OTHER_REQUESTS for c in CALLERS}


@pytest.mark.parametrize(
    ("request_name", "caller", "expected"),
    [
        pytest.param(request, caller, OTHERS[(request, caller)], id=f"{request}-{caller}")
        for request in OTHER_REQUESTS
        for caller in CALLERS
    ],
)
def test_other_routes_matrix(client, app, make_caller, request_name, caller, expected):
    world = setup_world(client, app, make_caller, "private")
    victim = make_caller("acme", "deployer")
    response = client.post(
        "/v1/categories", json={"name": "databases"}, headers=world.headers("admin")
    )
    assert response.status_code == 201
    req = OTHER_REQUESTS[request_name]
    own = world.callers[caller].token_id if caller != "anonymous" else victim.token_id
    req = Req(
        req.method,
        req.path.replace("{victim}", victim.token_id).replace("{self}", own),
        req.json,
        mutating=req.mutating,
    )
    before, before_refusals = world.audit_count(), world.refusal_count()

    response = world.send(caller, req)

    assert response.status_code == expected, response.get_data(as_text=True)
    succeeded = 200 <= expected < 300
    assert world.audit_count() == before + (1 if succeeded and req.mutating else 0)
    refused = req.mutating and expected in REFUSALS
    assert world.refusal_count() == before_refusals + (1 if refused else 0)


@pytest.mark.parametrize("caller", [c for c in CALLERS if c != "anonymous"])
def test_tenant_and_token_lists_show_non_admins_only_their_own(client, app, make_caller, caller):
    world = setup_world(client, app, make_caller, "private")
    me = world.callers[caller]

    tenants = client.get("/v1/tenants", headers=me.headers).get_json()["items"]
    tokens = client.get("/v1/tokens", headers=me.headers).get_json()["items"]

    if caller == "admin":
        assert {t["name"] for t in tenants} == {"admin", "acme", "globex"}
        assert {t["id"] for t in tokens} >= {c.token_id for c in world.callers.values() if c}
    else:
        assert [t["name"] for t in tenants] == [me.tenant]
        assert [t["id"] for t in tokens] == [me.token_id]
    assert all("token" not in t and "secret_hash" not in t for t in tokens)


# -- lists never leak another tenant's private rows --------------------------------------------


@pytest.fixture
def crowded(client, make_caller):
    """Private and public packages of two tenants sharing words, tags and a category."""
    admin = make_caller("admin", "admin")
    acme = make_caller("acme", "publisher")
    globex = make_caller("globex", "publisher")
    assert (
        client.post("/v1/categories", json={"name": "web"}, headers=admin.headers).status_code
        == 201
    )
    names = {}
    for owner, prefix in ((acme, "org.acme"), (globex, "org.globex")):
        for visibility in ("private", "public"):
            for i in range(3):
                name = f"{prefix}.{visibility}{i}"
                response = client.post(
                    "/v1/packages?categories=web",
                    data=package_bytes(name, "1.0.0", tags=["shared"], description="common words"),
                    content_type="application/gzip",
                    headers=owner.headers,
                )
                assert response.status_code == 201, response.get_json()
                if visibility == "public":
                    patched = client.patch(
                        f"/v1/packages/{name}",
                        json={"visibility": "public"},
                        headers=admin.headers,
                    )
                    assert patched.status_code == 200
                names[name] = (owner.tenant, visibility)
    return {"admin": admin, "acme": acme, "globex": globex, "names": names}


def list_all(client, headers, **params) -> list[str]:
    """Every name of a listing, following next_cursor with a small page size."""
    names, cursor = [], None
    for _ in range(100):
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/packages", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        names += [item["name"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return names
    raise AssertionError("the listing never ended")


LIST_FILTERS = [
    pytest.param({}, id="all"),
    pytest.param({"q": "common"}, id="q"),
    pytest.param({"q": "org private"}, id="q-two-words"),
    pytest.param({"tag": "shared"}, id="tag"),
    pytest.param({"category": "web"}, id="category"),
    pytest.param({"type": "application"}, id="type"),
    pytest.param({"owned": "true"}, id="owned"),
]


@pytest.mark.parametrize("params", LIST_FILTERS)
@pytest.mark.parametrize("who", ["acme", "globex", "admin"])
def test_lists_never_include_another_tenants_private_rows(client, crowded, who, params):
    caller = crowded[who]
    expected = {
        name
        for name, (tenant, visibility) in crowded["names"].items()
        if (who == "admin" or tenant == caller.tenant or visibility == "public")
        and (params.get("owned") != "true" or tenant == caller.tenant)
        and ("private" not in params.get("q", "") or "private" in name)
    }
    for sort in ("name", "-created", "-updated"):
        names = list_all(client, caller.headers, sort=sort, **params)

        assert len(names) == len(set(names)), f"a row appeared on two pages ({sort})"
        assert set(names) == expected, sort
