"""Metrics (prometheus_client): what a scrape of /v1/metrics tells is true of the whole service.

- the request counter of one scrape counts the requests every gunicorn worker answered, by
  route template, whichever worker answers the scrape;
- histograms have the buckets catalog/metrics.py and catalog/services/metrics.py document;
- a deploy moves catalog_deployments_total{status="succeeded"} by one and its apps show up
  in catalog_apps;
- the metrics are an admin's, or CATALOG_METRICS_TOKEN's, which reads nothing else.
"""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from catalog import config
from catalog.metrics import REQUEST_BUCKETS
from catalog.services.metrics import DEPLOYMENT_BUCKETS
from tests.conftest import EXAMPLES
from tests.integration.conftest import package_bytes
from tests.integration.served import get, serve, service_env

__all__ = ["serve", "service_env"]


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(sample name, labels, value) of every sample of a scrape."""
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def value(text: str, name: str, **labels: str) -> float:
    """The one sample `name` with `labels` (0 when the scrape has none)."""
    found = [v for n, ls, v in samples(text) if n == name and ls == labels]
    assert len(found) <= 1, found
    return found[0] if found else 0.0


def bucket_bounds(text: str, name: str, **labels: str) -> list[str]:
    return [
        ls["le"]
        for n, ls, _ in samples(text)
        if n == f"{name}_bucket" and {k: v for k, v in ls.items() if k != "le"} == labels
    ]


def documented(bounds: tuple[float, ...]) -> list[str]:
    return [str(float(b)) for b in bounds] + ["+Inf"]


def scrape(client, headers) -> str:
    response = client.get("/v1/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return response.get_data(as_text=True)


# -- across gunicorn workers -------------------------------------------------------------------


def test_a_scrape_counts_the_requests_every_gunicorn_worker_answered(serve, make_caller, tmp_path):
    directory = tmp_path / "metrics"
    port = serve(2, env={"PROMETHEUS_MULTIPROC_DIR": str(directory)})
    viewer, admin = make_caller("acme", "viewer"), make_caller("system", "admin")
    for _ in range(40):  # a connection each: the kernel spreads them over both workers
        assert get(port, "/v1/packages", viewer.headers)[0] == 200
    for _ in range(3):
        assert get(port, "/v1/packages/org.none", viewer.headers)[0] == 404

    # Each worker process keeps its own file; both served some of the requests.
    pids = {
        int(m.group(1)) for f in directory.iterdir() if (m := re.match(r"counter_(\d+)", f.name))
    }
    assert len(pids) == 2, sorted(f.name for f in directory.iterdir())
    for _ in range(4):  # whichever worker answers, the same counts
        status, body = get(port, "/v1/metrics", admin.headers)
        assert status == 200
        text = body.decode()
        requests = "catalog_http_requests_total"
        assert value(text, requests, method="GET", route="/v1/packages", status="200") == 40
        assert value(text, requests, method="GET", route="/v1/packages/<name>", status="404") == 3
        durations = "catalog_http_request_duration_seconds_count"
        assert value(text, durations, route="/v1/packages") == 40
        # Never a raw path as a label.
        assert "org.none" not in text


def test_the_metrics_token_reads_the_metrics_and_nothing_else(serve, make_caller):
    port = serve(1, METRICS_TOKEN="scraper-secret-0123456789-abcdefgh")
    scraper = {"Authorization": "Bearer scraper-secret-0123456789-abcdefgh"}
    status, body = get(port, "/v1/metrics", scraper)
    assert status == 200, body
    assert b"catalog_packages 0.0" in body
    assert get(port, "/v1/packages", scraper)[0] == 401
    assert (
        get(port, "/v1/metrics", {"Authorization": "Bearer scraper-secret-0123456789-abcdefgi"})[0]
        == 401
    )
    assert get(port, "/v1/metrics", {})[0] == 401
    assert get(port, "/v1/metrics", make_caller("acme", "publisher").headers)[0] == 403


def test_a_short_metrics_token_is_refused_at_start():
    with pytest.raises(ValueError, match="CATALOG_METRICS_TOKEN must be at least 32"):
        config.load({"CATALOG_METRICS_TOKEN": "guessable"})


# -- in one process ----------------------------------------------------------------------------


def test_histograms_have_the_documented_buckets_and_routes_are_templates(client, make_caller):
    admin, viewer = make_caller("system", "admin"), make_caller("acme", "viewer")
    assert client.get("/v1/packages/org.acme.nothing", headers=viewer.headers).status_code == 404
    text = scrape(client, admin.headers)

    request_seconds = "catalog_http_request_duration_seconds"
    assert bucket_bounds(text, request_seconds, route="/v1/packages/<name>") == documented(
        REQUEST_BUCKETS
    )
    deploy_seconds = "catalog_deployment_duration_seconds"
    assert bucket_bounds(text, deploy_seconds) == documented(DEPLOYMENT_BUCKETS)
    assert value(text, f"{deploy_seconds}_count") == 0
    assert "org.acme.nothing" not in text


def test_a_deploy_moves_the_succeeded_deployments_by_one(
    deployer, start_worker, client, make_caller
):
    admin = make_caller("system", "admin")
    start_worker()
    deployer.publish(EXAMPLES / "kv-store")
    deployer.publish(package_bytes("org.test.other", "1.0.0"))
    deployer.create_env("shop")
    deployer.add_app("shop", "store", "org.example.kvstore", parameters={"message": "hi"})
    before = scrape(client, admin.headers)
    assert value(before, "catalog_apps", status="pending") == 1
    assert value(before, "catalog_packages") == 2

    deployment = deployer.wait("shop", deployer.deploy("shop"))
    assert deployment["status"] == "succeeded", deployment["events"]
    after = scrape(client, admin.headers)

    succeeded = "catalog_deployments_total"
    assert (
        value(after, succeeded, status="succeeded")
        == value(before, succeeded, status="succeeded") + 1
    )
    assert value(after, succeeded, status="failed") == 0
    assert value(after, "catalog_rollbacks_total") == 0
    assert value(after, "catalog_deployments_in_flight", status="running") == 0
    assert value(after, "catalog_deployment_duration_seconds_count") == 1
    assert value(after, "catalog_deployment_duration_seconds_sum") > 0
    store = deployer.environment("shop")["apps"][0]["status"]
    assert value(after, "catalog_apps", status=store) == 1
    assert value(after, "catalog_apps", status="pending") == 0
    assert value(after, "catalog_log_budget_bytes", host="default") == 8 * 1024**3
