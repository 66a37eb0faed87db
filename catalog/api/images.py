"""Offline images a tenant carried in (bundles), and the bundle keys an admin trusts."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from catalog import current_settings
from catalog.api.context import blobs, db, principal
from catalog.api.docs import BINARY, problems
from catalog.errors import UPLOAD_SLACK, UnsupportedMediaType
from catalog.ratelimit import limiter
from catalog.schemas import images as schemas
from catalog.services import offline_images as service
from packages.imageref import RegistryPolicy

blp = Blueprint("images", __name__, description="Offline images and bundle keys")

TARBALL_TYPES = ("application/x-tar", "application/octet-stream")
TARBALL_BODY = {"required": True, "content": {t: {"schema": BINARY} for t in TARBALL_TYPES}}


def _tarball():
    if request.mimetype not in TARBALL_TYPES:
        raise UnsupportedMediaType(f"send the docker-save tarball as {TARBALL_TYPES[0]}")
    return request.stream


@blp.route("/images", methods=["POST"])
@limiter.limit(lambda: current_settings().upload_rate_limit)
@problems(403, 409, 413, 415, 429, 507)
@blp.arguments(schemas.ImageUploadArgs(), location="query")
@blp.response(201, schemas.OfflineImage)
@blp.alt_response(200, schema=schemas.OfflineImage, description="The same tarball, held already")
@blp.doc(requestBody=TARBALL_BODY)
def upload_image(args):
    """Store a `docker save` tarball as the tenant's image `reference` (publisher).

    The tenant's deployments that name `reference` then run it without a registry. The same
    tarball again answers 200; another tarball under a held reference is a 409.
    """
    settings = current_settings()
    request.max_content_length = settings.max_image_upload_bytes + UPLOAD_SLACK
    image, new = service.receive_image(
        db(), principal(), blobs(), _tarball, settings.max_image_upload_bytes,
        reference=args["reference"], registries=RegistryPolicy.from_setting(settings.registries),
        expected_digest=args["digest"], tenant_max_bytes=settings.tenant_max_offline_image_bytes,
    )  # fmt: skip
    return image, 201 if new else 200


@blp.route("/images", methods=["GET"])
@blp.arguments(schemas.ImageArgs(), location="query")
@blp.response(200, schemas.OfflineImageList)
def list_images(args):
    """The tenant's offline images (an admin with `all`: every tenant's), by reference."""
    items = service.list_images(db(), principal(), args["reference"], every_tenant=args["all"])
    return {"items": items, "next_cursor": None}


@blp.route("/images/<image_id>", methods=["DELETE"])
@problems(403)
@blp.response(204)
def delete_image(image_id):
    """Forget an offline image; deployments naming it pull it from its registry again."""
    service.delete_image(db(), principal(), blobs(), image_id)
    return "", 204


@blp.route("/bundle-keys", methods=["POST"])
@problems(400, 403, 409)
@blp.arguments(schemas.BundleKeyCreate())
@blp.response(201, schemas.BundleKey)
def create_bundle_key(body):
    """Trust an Ed25519 public key to sign the bundles imported here (admin)."""
    return service.register_key(db(), principal(), name=body["name"], public_key=body["public_key"])


@blp.route("/bundle-keys", methods=["GET"])
@blp.response(200, schemas.BundleKeyList)
def list_bundle_keys():
    """The keys bundles imported here may be signed with."""
    return {"items": service.list_keys(db(), principal()), "next_cursor": None}


@blp.route("/bundle-keys/<key_id>", methods=["DELETE"])
@problems(403)
@blp.response(204)
def delete_bundle_key(key_id):
    """Stop trusting a key (admin)."""
    service.delete_key(db(), principal(), key_id)
    return "", 204
