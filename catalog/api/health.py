"""Liveness and metrics."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from catalog.api.context import db, principal
from catalog.api.docs import problems
from catalog.auth import require_role
from catalog.services.metrics import render_metrics

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
    """Counters and gauges in the Prometheus text format (admin)."""
    require_role(principal(), "admin")
    return Response(render_metrics(db()), mimetype="text/plain; version=0.0.4")
