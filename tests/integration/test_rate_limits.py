"""Rate limits keyed on the authenticated token, on reads as on uploads (G46).

The in-process app counts in memory; the limits across API processes are shown on real
gunicorn workers sharing the machine's Redis.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import package_bytes

GZIP = {"Content-Type": "application/gzip"}


def assert_limited(response, words: str) -> None:
    """A 429 problem naming the limit, with a Retry-After in seconds."""
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert words in response.get_json()["detail"], response.get_json()
    retry_after = response.headers.get("Retry-After", "")
    assert retry_after.isdigit() and 0 < int(retry_after) <= 60, response.headers


# One token, as many spellings as the Authorization header admits: one bucket.
SPELLINGS = ["Bearer {}", "Bearer  {}", "bearer {}", "Bearer {} "]


@pytest.fixture
def app_config(request) -> dict:
    return getattr(request, "param", {})


@pytest.mark.parametrize("app_config", [{"UPLOAD_RATE_LIMIT": "3/minute"}], indirect=True)
def test_every_spelling_of_a_token_shares_one_upload_bucket(client, make_caller):
    acme = make_caller("acme", "publisher")
    answers = []
    for n, spelling in enumerate(SPELLINGS):
        headers = {"Authorization": spelling.format(acme.secret), **GZIP}
        answers.append(
            client.post("/v1/packages", data=package_bytes(version=f"1.0.{n}"), headers=headers)
        )
    assert [r.status_code for r in answers[:3]] == [201] * 3, [r.get_json() for r in answers]
    assert_limited(answers[3], "3 per 1 minute")


@pytest.mark.parametrize("app_config", [{"READ_RATE_LIMIT": "4/minute"}], indirect=True)
def test_reads_are_limited_per_token_over_every_route(client, make_caller):
    acme = make_caller("acme", "viewer")
    globex = make_caller("globex", "viewer")
    routes = ["/v1/packages", "/v1/environments", "/v1/categories", "/v1/templates"]
    answers = [
        client.get(routes[n % len(routes)], headers={"Authorization": spelling.format(acme.secret)})
        for n, spelling in enumerate(SPELLINGS)
    ]
    assert [r.status_code for r in answers] == [200] * 4, [r.get_json() for r in answers]
    assert answers[-1].headers["X-RateLimit-Remaining"] == "0"
    assert_limited(client.get("/v1/packages", headers=acme.headers), "4 per 1 minute")
    head = client.head("/v1/environments", headers=acme.headers)
    assert head.status_code == 429 and head.headers["Retry-After"].isdigit(), head.headers
    # Another token reads on; liveness is never limited.
    assert client.get("/v1/packages", headers=globex.headers).status_code == 200
    assert all(client.get("/v1/health").status_code == 200 for _ in range(7))


@pytest.mark.parametrize("app_config", [{"READ_RATE_LIMIT": "2/minute"}], indirect=True)
def test_anonymous_reads_are_limited_by_address(client):
    answers = [client.get("/v1/openapi.json") for _ in range(2)]
    assert [r.status_code for r in answers] == [200, 200]
    assert_limited(client.get("/v1/openapi.json"), "2 per 1 minute")
    other = client.get("/v1/openapi.json", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200


@pytest.mark.parametrize("app_config", [{"AUTH_FAILURE_RATE_LIMIT": "3/minute"}], indirect=True)
def test_requests_without_a_valid_token_are_limited_by_address(client, make_caller):
    guesses = [
        client.get("/v1/environments", headers={"Authorization": "Bearer cat_guess1"}),
        client.post("/v1/environments", json={"name": "x"}),  # no token at all
        client.delete("/v1/packages/x", headers={"Authorization": "Bearer cat_guess2"}),
    ]
    assert [r.status_code for r in guesses] == [401] * 3, [r.get_json() for r in guesses]
    assert_limited(
        client.get("/v1/environments", headers={"Authorization": "Bearer cat_guess3"}),
        "without a valid token",
    )
    elsewhere = client.get("/v1/environments", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert elsewhere.status_code == 401  # another address has its own count
    viewer = make_caller("acme", "viewer")  # a valid token is counted on itself only
    assert client.get("/v1/environments", headers=viewer.headers).status_code == 200


# --- concurrent streams -----------------------------------------------------------------------


def open_stream(client, caller, path: str = "/v1/environments/shop/events?follow=1"):
    """A follow=1 request whose body is not read: its stream holds a slot until closed."""
    return client.get(path, headers=caller.headers, buffered=False)


@pytest.fixture
def shop(client, make_caller):
    """An environment `shop` of tenant acme, and two of its viewers."""
    deployer = make_caller("acme", "deployer")
    created = client.post("/v1/environments", json={"name": "shop"}, headers=deployer.headers)
    assert created.status_code == 201, created.get_json()
    return make_caller("acme", "viewer"), make_caller("acme", "viewer")


def assert_stream_refused(response, words: str) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert words in response.get_json()["detail"], response.get_json()
    # At least the streams' own 5 s (Flask-Limiter raises it to its read window's reset).
    assert int(response.headers["Retry-After"]) >= 5, response.headers


@pytest.mark.parametrize(
    "app_config", [{"STREAMS_PER_TOKEN": 1, "STREAMS_PER_PROCESS": 1}], indirect=True
)
def test_a_stream_that_ends_gives_its_slot_back(client, shop, app):
    alice, _ = shop
    for _ in range(3):  # revision 7 does not exist: its stream ends at once, with `end`
        response = open_stream(client, alice, "/v1/environments/shop/events?follow=1&revision=7")
        assert response.status_code == 200
        body = b"".join(response.response)
        response.close()  # what the server does once the body is sent
        assert b"event: end" in body
    assert app.extensions["catalog"]["streams"].running == 0
