"""Liveness and metrics."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from catalog import current_settings
from catalog.api.context import db, is_metrics_scraper, principal
from catalog.api.docs import problems
from catalog.auth import require_role
from catalog.metrics import CONTENT_TYPE, exposition
from catalog.services.metrics import CatalogCollector

blp = Blueprint("health", __name__, description="Service health and metrics")


class Health(Schema):
    status = fields.String()
    database = fields.String()


@blp.route("/health")
@blp.response(200, Health)
@blp.alt_response(503, schema=Health, description="The database does not answer")
@blp.doc(security=[])
def health():
    """Whether the API and its database answer (no authentication)."""
    try:
        db().execute(text("select 1"))
    except Exception:
        return {"status": "unavailable", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}


@blp.route("/metrics")
@problems(403)
@blp.response(200, content_type="text/plain", description="Prometheus text format")
@blp.doc(responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics():
    """Counters, gauges and histograms in the Prometheus text format (an admin's token, or
    CATALOG_METRICS_TOKEN).

    Request figures count every process of the server (`catalogctl serve`); the catalog's
    own (deployments, apps, log budgets, packages, tenants) are read from the database.
    """
    if not is_metrics_scraper():
        require_role(principal(), "admin")
    body = exposition([CatalogCollector(db(), current_settings())])
    return Response(body, headers={"Content-Type": CONTENT_TYPE})
