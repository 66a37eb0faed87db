"""The OpenAPI document: committed, served, and true (F38).

- api_specs/openapi.yaml is what `make spec` generates from the code today;
- /v1/openapi.json serves that same document;
- Schemathesis, in-process against the WSGI app, sends what the document allows (and what it
  forbids) as an admin and as a publisher, and every answer must be what the document says:
  no server error, a documented status, the documented content type, headers and schema.
  Error answers are documented problem+json responses, so they are checked as well.

The run is bounded and reproducible: few examples per operation, derandomized, no deadline.
"""

from __future__ import annotations

import difflib
import json
import socket

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from catalog.api import inputs
from catalog.services import webhooks
from catalog.spec import openapi_document, openapi_yaml
from tests.conftest import ROOT
from tests.integration.conftest import package_bytes

SPEC = ROOT / "api_specs" / "openapi.yaml"
MAX_EXAMPLES = 12


# --- the committed document -------------------------------------------------------------------


def test_the_committed_spec_is_what_the_code_generates():
    committed = SPEC.read_text(encoding="utf-8")
    fresh = openapi_yaml()
    if committed != fresh:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                fresh.splitlines(keepends=True),
                "api_specs/openapi.yaml (committed)",
                "generated from the code",
                n=2,
            )
        )
        lines = diff.splitlines()
        shown = "\n".join(lines[:80]) + (f"\n... {len(lines) - 80} more lines" * (len(lines) > 80))
        pytest.fail(
            "api_specs/openapi.yaml is out of date with the code: run `make spec` and commit it\n"
            + shown,
            pytrace=False,
        )


def test_the_app_serves_the_committed_document(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    served = response.get_json()
    assert served == openapi_document()
    # The same document as the YAML file, once both are plain JSON values.
    committed = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    assert json.loads(json.dumps(served)) == json.loads(json.dumps(committed)), (
        "/v1/openapi.json differs from api_specs/openapi.yaml: run `make spec`"
    )


def test_every_error_is_a_documented_problem():
    """No flask-smorest `Error`/`default`: each operation lists problem+json statuses."""
    document = openapi_document()
    assert "Error" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            assert "default" not in responses, (method, path)
            assert "422" not in responses, (method, path)
            secured = operation.get("security", document["security"]) != []
            assert ("401" in responses) == secured, (method, path)
            assert {"414", "431"} <= set(responses), (method, path)
            for status, response in responses.items():
                if int(status) < 400 or (path, status) == ("/v1/health", "503"):
                    continue  # the health check's 503 is its own documented body
                if status in ("414", "431"):
                    continue  # the HTTP server's own page (test_served_limits.py)
                ref = response.get("$ref", "")
                assert ref.startswith("#/components/responses/"), (method, path, status)
                component = document["components"]["responses"][ref.rsplit("/", 1)[1]]
                assert component["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, status)


def test_the_upload_documents_its_bodies_and_its_limits():
    upload = openapi_document()["paths"]["/v1/packages"]["post"]
    assert set(upload["requestBody"]["content"]) == {
        "multipart/form-data",
        "application/zip",
        "application/gzip",
        "application/x-gzip",
        "application/octet-stream",
    }
    assert set(upload["responses"]) == {
        "201", "400", "401", "403", "409", "413", "414", "415", "429", "431", "507"
    }  # fmt: skip
    assert "Location" in upload["responses"]["201"]["headers"]
    too_many = openapi_document()["components"]["responses"]["TOO_MANY_REQUESTS"]
    assert too_many["headers"]["Retry-After"]["schema"]["type"] == "integer"


def test_reads_document_their_limit_and_follow_routes_their_streams():
    paths = openapi_document()["paths"]
    for path, operations in paths.items():
        if "get" in operations:
            assert ("429" in operations["get"]["responses"]) == (path != "/v1/health"), path
    events = paths["/v1/environments/{env}/events"]["get"]["responses"]["200"]["content"]
    assert set(events) == {"application/json", "text/event-stream"}
    logs = paths["/v1/environments/{env}/apps/{app}/logs"]["get"]["responses"]["200"]["content"]
    assert set(logs) == {"text/plain"}


# --- F38: Schemathesis ------------------------------------------------------------------------


@pytest.fixture
def seeded(app, client, make_caller):
    """Something to find: a category, and a package with two versions (tenant acme).

    Returns the callers whose tokens the fuzzer sends, each request once as each: an admin
    (tenant root) and a publisher (tenant acme).
    """
    admin = make_caller("root", "admin")
    publisher = make_caller("acme", "publisher")
    gzip = {**publisher.headers, "Content-Type": "application/gzip"}
    answers = [
        client.post("/v1/categories", json={"name": "web", "title": "Web"}, headers=admin.headers),
        client.post("/v1/packages?categories=web", data=package_bytes(), headers=gzip),
        client.post("/v1/packages", data=package_bytes(version="1.1.0"), headers=gzip),
    ]
    assert [r.status_code for r in answers] == [201, 201, 201]
    return [admin, publisher]


@schemathesis.serializer(
    "application/zip", "application/gzip", "application/x-gzip", "application/x-tar"
)
def _archive_bytes(_ctx, value) -> bytes:
    """Upload bodies (archives, image tarballs) as generated (`format: binary`), as they are."""
    return value if isinstance(value, bytes) else str(value).encode()


# The committed document (test_the_committed_spec_is_what_the_code_generates keeps it true to
# the code), one test per operation, called in-process on the WSGI app.
schema = schemathesis.openapi.from_path(SPEC)
schema.config.generation.update(
    # The test sends the caller's token itself: generated or removed Authorization headers
    # would be put back, and such a "negative" case would look accepted.
    with_security_parameters=False,
    # Unknown query parameters are ignored (webargs EXCLUDE), which OpenAPI cannot say; with
    # this on, a request with one would count as invalid data the API should have refused.
    allow_extra_parameters=False,
)


# Values the document can only describe as strings or references, whose meaning the API checks:
# a generated one is rightly refused with a 400 that names it.
CHECKED_BEYOND_THE_SCHEMA = {
    "cursor": "an opaque cursor, from a previous page",
    "version": "an exact version or a semver range",
    "categories": "names of existing categories",
    "apps": "apps of packages the tenant may deploy, bound to each other",
    "environment": "the name of an existing environment",
    "host": "the name of a registered Docker host",
    "docker_url": "tcp:// only when the API has TLS client files (CATALOG_DOCKER_TLS_DIR)",
    "url": "a webhook's http(s) URL whose host is a global address (CATALOG_WEBHOOK_ALLOW)",
    "server": "a registry host[:port] image references name, allowed by CATALOG_REGISTRIES",
    "reference": "an image reference allowed by CATALOG_REGISTRIES, not an id nor pinned",
}


@pytest.fixture(autouse=True)
def numeric_hosts_only(monkeypatch):
    """Generated webhook URLs name any host: they are resolved only when they are addresses
    (AI_NUMERICHOST), so the fuzzer sends no query to a name server, which lies beyond the
    machine; any other name does not resolve."""
    real = socket.getaddrinfo

    def numeric(host, port, *args, **kwargs):
        return real(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)

    monkeypatch.setattr(webhooks.socket, "getaddrinfo", numeric)


def is_upload(case) -> bool:
    """An archive or an image tarball: generated bytes are neither (a documented 400)."""
    return case.operation.method.upper() == "POST" and case.operation.path in (
        "/v1/packages",
        "/v1/images",
    )


def assert_valid_data_is_accepted(case, response) -> None:
    """Schemathesis' positive_data_acceptance, knowing what the document cannot say.

    Generated bytes are not a package (a documented 400, "Invalid Package"); text with NUL
    characters cannot be stored (catalog/api/inputs.py); and see CHECKED_BEYOND_THE_SCHEMA.
    Any other 400 for data the document allows means the document is wrong.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return
    if is_upload(case):
        return
    problem = response.json()
    unexplained = [
        error
        for error in problem.get("errors") or [{"path": "", "message": problem.get("detail")}]
        if error["message"] != inputs.MESSAGE
        and error["path"].split(".")[0].split("[")[0] not in CHECKED_BEYOND_THE_SCHEMA
    ]
    assert not unexplained, (
        f"{case.operation.label}: data the document allows was refused: {problem}\n"
        f"{case.as_curl_command()}"
    )


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one app and database per operation, on purpose
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@schema.parametrize()
def test_the_api_does_what_its_document_says(case, app, seeded):
    # Checks that send more requests (e.g. the same one without a token) use the schema's app.
    case.operation.schema.app = app
    for caller in seeded:
        response = case.call_and_validate(
            app=app, headers=caller.headers, excluded_checks=[positive_data_acceptance]
        )
        assert_valid_data_is_accepted(case, response)
