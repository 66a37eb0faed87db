"""The audit trail (an admin: every tenant's; a publisher: its own tenant's)."""

from __future__ import annotations

import logging

from flask import current_app, g, request
from flask_limiter.util import get_remote_address
from flask_smorest import Blueprint
from limits import parse
from sqlalchemy.exc import SQLAlchemyError

from catalog import current_settings
from catalog.api.context import READ_METHODS, db, principal
from catalog.api.docs import problems
from catalog.schemas import audit as schemas
from catalog.services import audit as service

log = logging.getLogger(__name__)

blp = Blueprint("audit", __name__, description="Who changed what, and which writes were refused")


@blp.route("/audit", methods=["GET"])
@problems(400, 403, 404)
@blp.arguments(schemas.AuditArgs(), location="query")
@blp.response(200, schemas.AuditList)
def list_audit(args):
    """Audit events, newest first, or oldest first `after` an id (to follow the trail).

    Every change the API made, and every write it refused (401, 403, 409, 429), with the
    token that asked (`actor`) when one authenticated, the route and the address; never a
    token, a secret or a request body.
    """
    items, following = service.list_events(db(), principal(), **args)
    return {"items": items, "next_cursor": following}


def record_refused_write(response):
    """After-request hook: a write refused with 401, 403, 409 or 429 goes on the trail, in a
    transaction of its own (the request's was rolled back).

    Recorded up to AUDIT_REFUSAL_RATE_LIMIT per caller (its token, else its address): a
    flood of refusals costs one row each only up to that rate, then nothing.
    """
    status = response.status_code
    if request.method in READ_METHODS or status not in service.REFUSALS:
        return response
    from catalog.ratelimit import caller_key, limiter

    item = parse(current_settings().audit_refusal_rate_limit)
    try:
        if not limiter.limiter.hit(item, "audit-refusals", caller_key()):
            return response
    except Exception as exc:  # the limiter's storage is away: the refusal still answers
        log.warning("could not count a refused %s %s: %s", request.method, request.path, exc)
        return response
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    try:
        with current_app.extensions["catalog"]["sessionmaker"]() as session:
            service.record_refusal(
                session,
                g.get("principal"),
                endpoint=request.endpoint or "unrouted",
                method=request.method,
                route=rule,
                path=request.path,
                status=status,
                address=get_remote_address(),
            )
            session.commit()
    except SQLAlchemyError as exc:  # the refusal stands; only its record is lost
        log.warning("could not record a refused %s %s: %s", request.method, rule, exc)
    return response
