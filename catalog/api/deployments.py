"""Deployments of an environment, cancel, and its event stream (JSON or server-sent events)."""

from __future__ import annotations

import json
import time

from flask import Response, current_app
from flask_smorest import Blueprint

from catalog import current_settings
from catalog.api.context import blobs, db, engine, principal, publisher, quotas, stream
from catalog.api.docs import TEXT, problems
from catalog.ratelimit import limiter
from catalog.schemas import deployments as schemas
from catalog.services import deployments as service

blp = Blueprint("deployments", __name__, description="Deployments, cancel and events")

FOLLOW_POLL_SECONDS = 0.5
FOLLOW_KEEPALIVE_SECONDS = 15.0
FOLLOW_MAX_SECONDS = 3600.0
FOLLOW_BATCH = 500  # events read at most per poll


@blp.route("/environments/<env>/deployments", methods=["POST"])
@problems(403, 409, 429, 507)
@blp.arguments(schemas.DeploymentCreate())
@blp.response(202, schemas.Deployment)
def create_deployment(body, env):
    """Deploy the draft as a new revision, or an earlier revision's snapshot (`from_revision`)."""
    return service.create_deployment(
        db(), principal(), publisher(), env,
        from_revision=body["from_revision"],
        limits=service.DeployLimits.from_settings(current_settings()), quotas=quotas(),
    )  # fmt: skip


@blp.route("/environments/<env>/plan", methods=["POST"])
@limiter.limit(lambda: current_settings().plan_rate_limit)
@problems(403, 404, 409, 429, 503)
@blp.response(200, schemas.PlanPreview)
def plan_deployment(env):
    """What deploying the draft now would do, queueing nothing: each container created,
    replaced, removed or kept, and why (never a secret value)."""
    # Imported at the first plan: the preparation and the render child's client are ~2 MB
    # that an API process answering no plan need not hold.
    from catalog.services import plans

    return plans.plan_draft(
        db(), principal(), env, engine=engine, blobs=blobs(), settings=current_settings()
    )


@blp.route("/environments/<env>/deployments", methods=["GET"])
@blp.arguments(schemas.DeploymentArgs(), location="query")
@blp.response(200, schemas.DeploymentList)
def list_deployments(args, env):
    """Revisions, newest first."""
    items, cursor = service.list_deployments(db(), principal(), env, args["limit"], args["cursor"])
    return {"items": items, "next_cursor": cursor}


@blp.route("/environments/<env>/deployments/<int:revision>", methods=["GET"])
@blp.response(200, schemas.DeploymentDetail)
def show_deployment(env, revision):
    """A revision: status, plan, and its events in order."""
    session = db()
    deployment = service.get_deployment(session, principal(), env, revision)
    deployment.events = service.events_after(
        session, deployment.environment_id, after=0, revision=revision, limit=1000
    )
    return deployment


@blp.route("/environments/<env>/deployments/<int:revision>/cancel", methods=["POST"])
@blp.response(202, schemas.Deployment)
def cancel_deployment(env, revision):
    """Cancel a queued or running revision; a running one is undone by its worker."""
    return service.cancel_deployment(db(), principal(), env, revision)


@blp.route("/environments/<env>/events", methods=["GET"])
@blp.arguments(schemas.EventArgs(), location="query")
@blp.response(200, schemas.EventList, description="The events; with follow=1 a stream of them")
@blp.doc(responses={200: {"content": {"text/event-stream": {"schema": TEXT}}}})
def list_events(args, env):
    """Events after an id; `follow=1` streams them as server-sent events.

    A stream of one `revision` ends once that revision has finished and its every event was
    sent, with a last event of type `end` whose data is the revision's final status (null for
    a revision that does not exist).
    """
    events = service.list_events(
        db(), principal(), env, after=args["after"], revision=args["revision"], limit=args["limit"]
    )
    if not args["follow"]:
        return {"items": events, "next_cursor": None}
    env_id = service.get_environment_id(db(), principal(), env)
    return _stream(env_id, args["after"], args["revision"], events)


def _stream(env_id: str, after: int, revision: int | None, first: list) -> Response:
    sessions = current_app.extensions["catalog"]["read_sessionmaker"]
    dump = schemas.Event().dump

    def generate(slot):
        last, pending, finished, final = after, first, False, None
        started = quiet_since = time.monotonic()
        yield ": open\n\n"  # the headers go out now: the client knows its stream was accepted
        while time.monotonic() - started < FOLLOW_MAX_SECONDS:
            for event in pending:
                last = event.id
                yield f"id: {event.id}\nevent: {event.level}\ndata: {json.dumps(dump(event))}\n\n"
                quiet_since = time.monotonic()
            if finished and len(pending) < FOLLOW_BATCH:
                yield f"event: end\ndata: {json.dumps({'revision': revision, 'status': final})}\n\n"
                return
            if time.monotonic() - quiet_since > FOLLOW_KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            if not slot.alive():
                return  # the client has gone: give its slot back now, not at the next write
            time.sleep(FOLLOW_POLL_SECONDS)
            with sessions() as session:
                # The status first: a worker commits a revision's last event with its final
                # status, so the events read next include every event of a finished revision.
                if revision is not None:
                    finished, final = service.revision_finished(session, env_id, revision)
                pending = service.events_after(
                    session, env_id, after=last, revision=revision, limit=FOLLOW_BATCH
                )

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return stream(generate, mimetype="text/event-stream", headers=headers)
