"""A tenant's credentials for private registries (publisher; an admin for any tenant)."""

from __future__ import annotations

from flask_smorest import Blueprint

from catalog import current_settings
from catalog.api.context import db, principal
from catalog.api.docs import problems
from catalog.schemas import registries as schemas
from catalog.secretbox import box_of
from catalog.services import registries as service
from packages.imageref import RegistryPolicy

blp = Blueprint(
    "registries", __name__, description="Private registries: a tenant's pull credentials"
)


@blp.route("/registries", methods=["POST"])
@problems(400, 403, 404, 409)
@blp.arguments(schemas.RegistryCreate())
@blp.response(201, schemas.Registry)
def create_registry(body):
    """Keep a username and password for a registry (publisher); the tenant's deployments pull
    its images with them, and no other tenant's do.

    The password is stored encrypted and never shown. Every deploy of an image from a registry
    some tenant keeps credentials for pulls it as the deploying tenant first, so an image on
    the engine serves only a tenant the registry lets pull it.
    """
    session = db()
    return service.add_registry(
        session, principal(), server=body["server"], username=body["username"],
        password=body["password"], tenant=body["tenant"],
        registries=RegistryPolicy.from_setting(current_settings().registries),
        box=box_of(session),
    )  # fmt: skip


@blp.route("/registries", methods=["GET"])
@problems(403, 404)
@blp.arguments(schemas.RegistryArgs(), location="query")
@blp.response(200, schemas.RegistryList)
def list_registries(args):
    """The tenant's registry credentials (an admin: every tenant's), by server; never a
    password."""
    items, following = service.list_registries(db(), principal(), **args)
    return {"items": items, "next_cursor": following}


@blp.route("/registries/<registry_id>", methods=["DELETE"])
@problems(403)
@blp.response(204)
def delete_registry(registry_id):
    """Forget registry credentials; images from that registry are pulled as the deploying
    tenant still (their registry stays guarded)."""
    service.remove_registry(db(), principal(), registry_id)
    return "", 204
