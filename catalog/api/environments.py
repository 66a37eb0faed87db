"""Environments and the apps of their draft; `If-Match` guards every draft edit."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from catalog.api.context import db, principal, publisher, quotas
from catalog.api.docs import problems
from catalog.schemas import environments as schemas
from catalog.services import environments as service

blp = Blueprint("environments", __name__, description="Environments and their apps")

ETAG = {"ETag": {"description": 'The draft\'s version, "<n>"', "schema": {"type": "string"}}}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "The ETag the edit is based on; 412 when the draft has changed since",
}


def if_match() -> frozenset[str] | None:
    """The strong tags of `If-Match` ("*" for any), or None when there is no such header."""
    if "If-Match" not in request.headers:
        return None
    tags = request.if_match
    return frozenset({"*"}) if tags.star_tag else frozenset(tags.as_set())


@blp.route("/environments", methods=["POST"])
@problems(403, 409)
@blp.arguments(schemas.EnvironmentCreate())
@blp.response(201, schemas.Environment, headers=ETAG)
def create_environment(body):
    """Create an empty environment in the caller's tenant (deployer)."""
    view = service.create_environment(
        db(), principal(), body["name"], body["description"], body["settings"],
        host=body["host"], quotas=quotas(),
    )  # fmt: skip
    return view, 201, {"ETag": view.etag}


@blp.route("/environments", methods=["GET"])
@blp.arguments(schemas.EnvironmentArgs(), location="query")
@blp.response(200, schemas.EnvironmentList)
def list_environments(args):
    """The caller's environments (all of them for an admin), keyset-paginated by name."""
    items, cursor = service.list_environments(db(), principal(), args["limit"], args["cursor"])
    return {"items": items, "next_cursor": cursor}


@blp.route("/environments/<env>", methods=["GET"])
@problems(404, 409)
@blp.response(200, schemas.Environment, headers=ETAG)
def show_environment(env):
    """Status, settings, current revision and the draft's apps with status and endpoints."""
    view = service.show_environment(db(), principal(), env)
    return view, 200, {"ETag": view.etag}


@blp.route("/environments/<env>", methods=["PATCH"])
@problems(403, 404, 409, 412)
@blp.arguments(schemas.EnvironmentPatch())
@blp.response(200, schemas.Environment, headers=ETAG)
@blp.doc(parameters=[IF_MATCH])
def update_environment(changes, env):
    """Rename, describe or change the settings (deployer)."""
    view = service.update_environment(db(), principal(), env, changes, if_match())
    return view, 200, {"ETag": view.etag}


@blp.route("/environments/<env>", methods=["DELETE"])
@problems(403, 404, 409, 412)
@blp.response(202, description="Marked `deleting`; the worker tears it down and removes it")
@blp.doc(parameters=[IF_MATCH])
def delete_environment(env):
    """Tear the environment down and delete it (deployer); always asynchronous."""
    service.delete_environment(db(), principal(), publisher(), env, if_match())
    return "", 202


@blp.route("/environments/<env>/apps", methods=["POST"])
@problems(403, 404, 409, 412)
@blp.arguments(schemas.AppCreate())
@blp.response(201, schemas.App, headers=ETAG)
@blp.doc(parameters=[IF_MATCH])
def add_app(body, env):
    """Add an app to the draft (deployer); nothing runs until the next deployment."""
    view = service.add_app(db(), principal(), env, body, if_match())
    return view, 201, {"ETag": view.etag}


@blp.route("/environments/<env>/apps/<app>", methods=["GET"])
@problems(404, 409)
@blp.response(200, schemas.App, headers=ETAG)
def show_app(env, app):
    """One app of the draft with its status and endpoints."""
    view = service.get_app(db(), principal(), env, app)
    return view, 200, {"ETag": view.etag}


@blp.route("/environments/<env>/apps/<app>", methods=["PATCH"])
@problems(403, 404, 409, 412)
@blp.arguments(schemas.AppPatch())
@blp.response(200, schemas.AppUpdated, headers=ETAG)
@blp.doc(parameters=[IF_MATCH])
def update_app(changes, env, app):
    """Change an app's version, parameters (replaced whole) or bindings (deployer); a new
    version alone migrates the stored parameters by its `migrations`."""
    view = service.update_app(db(), principal(), env, app, changes, if_match())
    return view, 200, {"ETag": view.etag}


@blp.route("/environments/<env>/apps/<app>", methods=["DELETE"])
@problems(403, 404, 409, 412)
@blp.response(204, headers=ETAG)
@blp.doc(parameters=[IF_MATCH])
def delete_app(env, app):
    """Remove an app from the draft (deployer); refused while another app binds to it."""
    etag = service.delete_app(db(), principal(), env, app, if_match())
    return "", 204, {"ETag": etag}
