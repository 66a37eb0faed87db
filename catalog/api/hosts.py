"""Docker hosts (admin): the engines environments are placed on."""

from __future__ import annotations

from flask_smorest import Blueprint

from catalog import current_settings
from catalog.api.context import db, principal
from catalog.api.docs import problems
from catalog.schemas import hosts as schemas
from catalog.services import hosts as service

blp = Blueprint("hosts", __name__, description="Docker hosts environments are placed on")


@blp.route("/hosts", methods=["POST"])
@problems(403, 409)
@blp.arguments(schemas.HostCreate())
@blp.response(201, schemas.Host)
def add_host(body):
    """Register a Docker host (admin); its workers and tracker run with its name."""
    return service.add_host(db(), principal(), body, tls_dir=current_settings().docker_tls_dir)


@blp.route("/hosts", methods=["GET"])
@problems(403)
@blp.response(200, schemas.HostList)
def list_hosts():
    """Every registered host with the number of environments on it (admin)."""
    return {"items": service.list_hosts(db(), principal()), "next_cursor": None}


@blp.route("/hosts/<name>", methods=["GET"])
@problems(403)
@blp.response(200, schemas.Host)
def show_host(name):
    """One host (admin)."""
    return service.show_host(db(), principal(), name)


@blp.route("/hosts/<name>", methods=["PATCH"])
@problems(403)
@blp.arguments(schemas.HostPatch())
@blp.response(200, schemas.Host)
def update_host(changes, name):
    """Change a host's addresses, or disable it for new environments (admin)."""
    tls_dir = current_settings().docker_tls_dir
    return service.update_host(db(), principal(), name, changes, tls_dir=tls_dir)


@blp.route("/hosts/<name>", methods=["DELETE"])
@problems(403, 409)
@blp.response(204)
def remove_host(name):
    """Unregister a host (admin); refused while environments are placed on it."""
    service.remove_host(db(), principal(), name)
    return "", 204
