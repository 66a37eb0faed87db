"""Webhooks: a receiver on loopback (allowed by the test's CATALOG_WEBHOOK_ALLOW) gets signed
deliveries that verify, a failing receiver gets retries until the delivery is given up, and
addresses of the installation's own network are refused without the setting."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from catalog.models import Webhook
from tests.integration.conftest import package_bytes
from tests.integration.test_deploy import deploy_ok
from tests.polling import eventually

LOOPBACK = {"WEBHOOK_ALLOW": "127.0.0.1"}
FAST_RETRIES = {
    "CATALOG_WEBHOOK_ALLOW": "127.0.0.1",
    "CATALOG_WEBHOOK_RETRY_SECONDS": "0.2",
    "CATALOG_WEBHOOK_MAX_ATTEMPTS": "3",
}
SLEEPER = {
    "image": "catalog-test/busybox:latest",
    "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
    "resources": {"memory": "32m", "cpus": 0.25, "pids": 64},
}


class Receiver:
    """An HTTP server on loopback that records each request and answers `statuses` in turn
    (the last one from then on)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = (
                    receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/catalog"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator:
    started: list[Receiver] = []

    def start(*statuses: int) -> Receiver:
        started.append(Receiver(list(statuses) or [204]))
        return started[-1]

    yield start
    for one in started:
        one.server.shutdown()
        one.server.server_close()


def register(deployer, url: str, *events: str, expect: int = 201) -> dict:
    return deployer.call(
        "POST", "/webhooks", json={"url": url, "events": list(events)}, expect=expect
    )


def deliveries(deployer, webhook_id: str) -> list[dict]:
    return deployer.call("GET", f"/webhooks/{webhook_id}/deliveries")["items"]


REFUSED = [
    "http://127.0.0.1:9/hook",
    "http://localhost:9/hook",
    "http://10.0.0.5/hook",
    "http://192.168.1.10/hook",
    "http://172.16.0.1/hook",
    "http://100.64.0.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]:8080/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fd00::1]/hook",
    "http://0.0.0.0/hook",
    "http://2130706433/hook",  # 127.0.0.1 as a number
    "http://0x7f.1/hook",
    "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "http://[2002:a00:1::1]/hook",  # 6to4 of 10.0.0.1
    "http://[::7f00:1]/hook",  # IPv4-compatible
    "http://[fec0::1]/hook",  # site-local
]


@pytest.mark.parametrize("url", REFUSED)
def test_an_address_of_the_installations_own_network_is_refused_without_the_setting(
    app, deployer, url
):
    refused = register(deployer, url, "deployment.succeeded", expect=400)
    assert refused["errors"][0]["path"] == "url"
    assert "CATALOG_WEBHOOK_ALLOW" in refused["errors"][0]["message"]
    if "127.0.0.1" not in url:  # what a name resolves to is not told
        assert "127.0.0.1" not in refused["errors"][0]["message"]
    with app.extensions["catalog"]["sessionmaker"]() as session:
        assert session.scalar(select(func.count()).select_from(Webhook)) == 0


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.org/hook", "http:// or https://"),
        ("http://user:pw@example.org/hook", "credentials"),
        ("http:///hook", "no host"),
        ("http://straße.example/hook", "ASCII"),
    ],
)
def test_a_url_that_is_not_a_plain_http_target_is_refused(deployer, url, words):
    refused = register(deployer, url, "deployment.succeeded", expect=400)
    assert words in refused["errors"][0]["message"]


@pytest.mark.parametrize("app_config", [LOOPBACK])
def test_the_setting_allows_loopback_and_events_are_checked(deployer, make_caller, receiver):
    created = register(deployer, receiver().url, "package.published")
    assert created["secret"].startswith("whsec_") and created["events"] == ["package.published"]
    listed = deployer.call("GET", "/webhooks")["items"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    assert "events" in json.dumps(register(deployer, receiver().url, "nope", expect=400))
    viewer = make_caller("acme", "viewer")
    deployer.call("GET", "/webhooks", expect=403, headers=viewer.headers)
    other = make_caller("globex", "publisher")
    deployer.call("DELETE", f"/webhooks/{created['id']}", expect=404, headers=other.headers)
    deployer.client.delete(f"/v1/webhooks/{created['id']}", headers=deployer.headers)
    assert deployer.call("GET", "/webhooks")["items"] == []


@pytest.mark.parametrize("app_config", [LOOPBACK])
def test_a_tenant_has_at_most_twenty_webhooks_and_the_trail_keeps_only_their_origin(
    app, deployer, receiver
):
    url = receiver().url + "?key=chat-secret-in-the-url"
    for _ in range(20):
        register(deployer, url, "package.published")
    refused = register(deployer, url, "package.published", expect=409)
    assert "20 webhooks" in refused["detail"]
    with app.extensions["catalog"]["sessionmaker"]() as session:
        from catalog.models import AuditEvent

        details = [
            e.detail for e in session.scalars(select(AuditEvent)) if e.action == "webhook.create"
        ]
    assert len(details) == 20 and "chat-secret-in-the-url" not in json.dumps(details)
    assert details[0]["origin"] == url.split("/hooks")[0]


@pytest.mark.parametrize("app_config", [LOOPBACK])
def test_a_deploy_and_a_publish_send_signed_deliveries_that_verify(
    deployer, start_worker, receiver
):
    start_worker(CATALOG_WEBHOOK_ALLOW="127.0.0.1")
    hook = receiver()
    created = register(deployer, hook.url, "deployment.succeeded", "package.published")
    deployer.publish(package_bytes("org.test.told", "1.0.0", services={"main": SLEEPER}))
    deployer.create_env("told")
    deployer.add_app("told", "a", "org.test.told")
    deploy_ok(deployer, "told")

    eventually(lambda: len(hook.received) == 2, 20, "both deliveries received")
    assert sorted(hook.events()) == ["deployment.succeeded", "package.published"]
    for headers, body in hook.received:
        expected = hmac.new(created["secret"].encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-catalog-signature"], f"sha256={expected}")
        assert headers["x-catalog-event"] == json.loads(body)["event"]
        assert headers["content-type"] == "application/json"
    deployed = next(json.loads(b) for _, b in hook.received if b"deployment." in b)
    assert deployed["data"] == {
        "environment": "told", "environment_id": deployed["data"]["environment_id"],
        "revision": 1, "status": "succeeded", "error": "",
    }  # fmt: skip
    assert (
        deployed["id"]
        == next(h for h, b in hook.received if b"deployment." in b)["x-catalog-delivery"]
    )
    shown = deliveries(deployer, created["id"])
    assert {(d["event"], d["status"], d["attempts"], d["last_status_code"]) for d in shown} == {
        ("deployment.succeeded", "delivered", 1, 204),
        ("package.published", "delivered", 1, 204),
    }


@pytest.mark.parametrize("app_config", [LOOPBACK])
def test_a_failing_receiver_gets_retries_until_the_delivery_is_given_up(
    deployer, start_worker, receiver
):
    start_worker(**FAST_RETRIES)
    failing, recovering = receiver(500), receiver(503, 503, 200)
    gives_up = register(deployer, failing.url, "package.published")
    recovers = register(deployer, recovering.url, "package.published")

    deployer.publish(package_bytes("org.test.retried", "1.0.0", services={"main": SLEEPER}))

    def ended(webhook: dict) -> dict | None:
        (delivery,) = deliveries(deployer, webhook["id"])
        return delivery if delivery["status"] != "pending" else None

    given_up = eventually(lambda: ended(gives_up), 30, "the failing delivery given up")
    assert (given_up["status"], given_up["attempts"], given_up["last_status_code"]) == (
        "failed", 3, 500,
    )  # fmt: skip
    assert "HTTP 500" in given_up["last_error"]
    assert len(failing.received) == 3
    assert len({h["x-catalog-delivery"] for h, _ in failing.received}) == 1  # one delivery, retried
    delivered = eventually(lambda: ended(recovers), 30, "the recovering delivery delivered")
    assert (delivered["status"], delivered["attempts"], delivered["last_status_code"]) == (
        "delivered", 3, 200,
    )  # fmt: skip
