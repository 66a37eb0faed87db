"""Offline images (carried in by bundles) and the keys bundles are signed with."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from packages.manifest_checks import SCHEMA

DIGEST = validate.Regexp(r"^sha256:[0-9a-f]{64}$(?!\n)", error="must be sha256:<64 hex>")


# The manifest's own grammar of an image reference (packages/schema/manifest.json).
REFERENCE = validate.Regexp(
    SCHEMA["$defs"]["imageReference"]["pattern"],
    error="must be an image reference like nginx:1.25 or registry.example.com:5000/org/app:1",
)


class ImageUploadArgs(Schema):
    reference = fields.String(
        required=True,
        validate=[validate.Length(1, 255), REFERENCE],
        metadata={"description": "The image reference the tarball holds, e.g. nginx:1.25"},
    )
    digest = fields.String(
        load_default=None,
        validate=DIGEST,
        metadata={"description": "Refuse the tarball unless this is its sha256 (a bundle's)"},
    )


class ImageArgs(Schema):
    reference = fields.String(load_default=None, validate=validate.Length(1, 255))
    all = fields.Boolean(
        load_default=False, metadata={"description": "An admin: every tenant's images"}
    )


class OfflineImage(Schema):
    id = fields.String()
    reference = fields.String()
    digest = fields.String(metadata={"description": "sha256 of the docker-save tarball"})
    size = fields.Integer()
    created_at = fields.DateTime()


class OfflineImageList(Schema):
    items = fields.List(fields.Nested(OfflineImage), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class BundleKeyCreate(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    public_key = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[A-Za-z0-9+/]{43}=$(?!\n)", error="must be an Ed25519 public key in base64"
        ),
        metadata={"description": "Ed25519 public key, 32 bytes in base64 (`bundle keygen`)"},
    )


class BundleKey(Schema):
    id = fields.String()
    name = fields.String()
    public_key = fields.String()
    created_at = fields.DateTime()


class BundleKeyList(Schema):
    items = fields.List(fields.Nested(BundleKey), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
