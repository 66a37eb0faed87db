"""Observing and acting on running apps: logs, actions and their tasks."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint

from catalog.api.context import db, engine, principal, publisher, stream
from catalog.api.docs import TEXT, problems
from catalog.schemas import observe as schemas
from catalog.services import actions, logs

blp = Blueprint("observe", __name__, description="Logs, actions and tasks of apps")


@blp.route("/environments/<env>/apps/<app>/logs", methods=["GET"])
@problems(503)
@blp.arguments(schemas.LogArgs(), location="query")
@blp.response(
    200, content_type="text/plain", description="The log lines, oldest first; with follow=1 live"
)
@blp.doc(responses={200: {"content": {"text/plain": {"schema": TEXT}}}})
def app_logs(args, env, app):
    """An app's container logs (every service, or `service`); `follow=1` streams one service."""
    containers = logs.app_containers(db(), principal(), engine, env, app, args["service"])
    if args["follow"]:
        return stream(
            lambda slot: logs.follow(containers, args["tail"], slot.alive),
            mimetype="text/plain",
            headers={"X-Accel-Buffering": "no"},
        )
    return Response(logs.tail(containers, args["tail"]), mimetype="text/plain")


@blp.route("/environments/<env>/apps/<app>/actions/<action>", methods=["POST"])
@blp.arguments(schemas.ActionRun())
@blp.response(202, schemas.Task)
def run_action(body, env, app, action):
    """Run restart, stop, start, or an action the package defines; a worker carries it out."""
    return actions.run_action(
        db(), principal(), publisher(), env, app, action,
        service=body["service"], parameters=body["parameters"],
    )  # fmt: skip


@blp.route("/environments/<env>/tasks/<task_id>", methods=["GET"])
@blp.response(200, schemas.Task)
def show_task(env, task_id):
    """An action's status, exit code and output tail."""
    return actions.get_task(db(), principal(), env, task_id)
