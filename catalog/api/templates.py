"""Templates, and environments made from them."""

from __future__ import annotations

from flask import url_for
from flask_smorest import Blueprint

from catalog.api.context import db, principal, quotas
from catalog.api.docs import problems
from catalog.api.environments import ETAG
from catalog.schemas import environments as environment_schemas
from catalog.schemas import templates as schemas
from catalog.services import templates as service

blp = Blueprint("templates", __name__, description="Templates: environments to make again")

LOCATION = {"Location": {"description": "The new resource", "schema": {"type": "string"}}}


@blp.route("/templates", methods=["POST"])
@problems(403, 409)
@blp.arguments(schemas.TemplateCreate())
@blp.response(201, schemas.Template, headers=LOCATION)
def create_template(body):
    """Keep apps as given, or an environment's draft, as a template (deployer).

    The apps must pass the checks a deployment makes.
    """
    view = service.create_template(db(), principal(), body)
    return view, 201, {"Location": url_for("templates.show_template", template=view.name)}


@blp.route("/templates", methods=["GET"])
@blp.arguments(schemas.TemplateArgs(), location="query")
@blp.response(200, schemas.TemplateList)
def list_templates(args):
    """The caller's templates (every tenant's for an admin), keyset-paginated by name."""
    items, cursor = service.list_templates(db(), principal(), args["limit"], args["cursor"])
    return {"items": items, "next_cursor": cursor}


@blp.route("/templates/<template>", methods=["GET"])
@problems(404, 409)
@blp.response(200, schemas.Template)
def show_template(template):
    """A template's settings and apps, secrets masked."""
    return service.show_template(db(), principal(), template)


@blp.route("/templates/<template>", methods=["DELETE"])
@problems(403, 404, 409)
@blp.response(204)
def delete_template(template):
    """Delete a template (deployer); environments made from it stay."""
    service.delete_template(db(), principal(), template)
    return "", 204


@blp.route("/templates/<template>/environments", methods=["POST"])
@problems(403, 404, 409)
@blp.arguments(schemas.EnvironmentFromTemplate())
@blp.response(201, environment_schemas.Environment, headers={**ETAG, **LOCATION})
def create_environment(body, template):
    """Make an environment whose draft is the template's apps (deployer); deploy it as any."""
    view = service.create_environment_from(db(), principal(), template, body, quotas())
    location = url_for("environments.show_environment", env=view.name)
    return view, 201, {"ETag": view.etag, "Location": location}
