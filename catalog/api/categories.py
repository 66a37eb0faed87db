"""Categories: an admin-managed list that packages reference."""

from __future__ import annotations

from flask_smorest import Blueprint

from catalog.api.context import db, principal
from catalog.api.docs import problems
from catalog.schemas import packages as schemas
from catalog.services import categories as service

blp = Blueprint("categories", __name__, description="Package categories")


@blp.route("/categories", methods=["GET"])
@blp.response(200, schemas.CategoryList)
def list_categories():
    """Every category."""
    return {"items": service.list_categories(db(), principal()), "next_cursor": None}


@blp.route("/categories", methods=["POST"])
@problems(403, 409)
@blp.arguments(schemas.CategoryCreate())
@blp.response(201, schemas.Category)
def create_category(body):
    """Create a category (admin)."""
    return service.create_category(db(), principal(), body["name"], body["title"])


@blp.route("/categories/<name>", methods=["DELETE"])
@problems(403)
@blp.response(204)
def delete_category(name):
    """Delete a category (admin); packages lose it."""
    service.delete_category(db(), principal(), name)
