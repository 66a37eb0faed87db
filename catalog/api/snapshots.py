"""Volume snapshots of an environment: what the workers copied before changing data."""

from __future__ import annotations

from flask_smorest import Blueprint

from catalog.api.context import db, principal
from catalog.schemas import snapshots as schemas
from catalog.services import snapshots as service

blp = Blueprint("snapshots", __name__, description="Volume snapshots of environments")


@blp.route("/environments/<env>/snapshots", methods=["GET"])
@blp.arguments(schemas.SnapshotArgs(), location="query")
@blp.response(200, schemas.SnapshotList)
def list_snapshots(args, env):
    """Snapshots of the environment's volumes, newest revision first: each kept, restored,
    failed (with what failed) or pruned."""
    items, cursor = service.list_snapshots(db(), principal(), env, args["limit"], args["cursor"])
    return {"items": items, "next_cursor": cursor}
