"""Prometheus metrics: request counters kept in-process and catalog gauges read from the DB."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Package, PackageVersion, Tenant

REQUESTS: dict[tuple[str, int], int] = {}


def count_request(method: str, status: int) -> None:
    key = (method, status)
    REQUESTS[key] = REQUESTS.get(key, 0) + 1


def render_metrics(session: Session) -> str:
    lines = [
        "# HELP catalog_http_requests_total HTTP requests answered by this process.",
        "# TYPE catalog_http_requests_total counter",
    ]
    for (method, status), value in sorted(REQUESTS.items()):
        lines.append(f'catalog_http_requests_total{{method="{method}",status="{status}"}} {value}')
    for name, model, help_text in (
        ("catalog_tenants", Tenant, "Tenants."),
        ("catalog_packages", Package, "Packages."),
        ("catalog_package_versions", PackageVersion, "Published package versions."),
    ):
        value = session.scalar(select(func.count()).select_from(model)) or 0
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
    return "\n".join(lines) + "\n"
