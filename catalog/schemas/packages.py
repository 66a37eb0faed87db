"""Packages, versions and categories."""

from __future__ import annotations

from flask import url_for
from marshmallow import Schema, fields, validate
from webargs.fields import DelimitedList

from catalog.schemas.common import NAME, PageArgs

TAG = validate.Regexp(r"^[a-z0-9][a-z0-9._-]{0,31}\Z", error="a short lower-case tag")
VISIBILITY = validate.OneOf(("private", "public"))


class CategoryCreate(Schema):
    name = fields.String(required=True, validate=NAME)
    title = fields.String(load_default="", validate=validate.Length(max=200))


class Category(Schema):
    name = fields.String()
    title = fields.String()


class CategoryList(Schema):
    items = fields.List(fields.Nested(Category), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class PackageArgs(PageArgs):
    q = fields.String(load_default=None, validate=validate.Length(max=200))
    category = fields.String(load_default=None, validate=validate.Length(max=64))
    tag = fields.String(load_default=None, validate=validate.Length(max=32))
    type = fields.String(load_default=None, validate=validate.OneOf(("application", "library")))
    owned = fields.Boolean(load_default=False)
    sort = fields.String(
        load_default=None,
        validate=validate.OneOf(("relevance", "name", "-created", "-updated")),
        metadata={
            "description": "relevance (the default with q: exact and prefix name matches "
            "first), name (the default without q), -created or -updated"
        },
    )


class UploadArgs(Schema):
    visibility = fields.String(load_default="private", validate=VISIBILITY)
    categories = DelimitedList(fields.String(validate=validate.Length(1, 64)), load_default=list)
    digest = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^sha256:[0-9a-f]{64}$(?!\n)", error="must be sha256:<64 hex>"),
        metadata={"description": "Refuse the archive unless this is its sha256 (a bundle's)"},
    )


class VersionSummary(Schema):
    version = fields.String()
    digest = fields.String()
    size = fields.Integer()
    yanked = fields.Boolean()
    created_at = fields.DateTime()


class Version(VersionSummary):
    package = fields.Function(lambda v: v.package.name)
    manifest = fields.Dict()
    parameters = fields.Function(lambda v: v.manifest.get("parameters") or {"type": "object"})
    archive_url = fields.Function(
        lambda v: url_for(
            "packages.VersionArchive", name=v.package.name, version=v.version, _external=False
        )
    )


class Package(Schema):
    name = fields.String()
    title = fields.String()
    description = fields.String()
    type = fields.String()
    owner = fields.String()
    visibility = fields.String()
    enabled = fields.Boolean()
    tags = fields.List(fields.String())
    categories = fields.List(fields.String(), attribute="category_names")
    latest_version = fields.String(allow_none=True)
    has_logo = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class PackageDetail(Package):
    versions = fields.List(fields.Nested(VersionSummary), attribute="versions_newest_first")


class Dumped(fields.Nested):
    """Nested objects that arrive dumped already; documented as the nested schema."""

    def _serialize(self, value, attr, obj, **kwargs):
        return value


def listed_package(package) -> dict:
    """`Package().dump(package)`, written out: listings are the API's hot path, and there
    marshmallow's per-field work was a fifth of the CPU. A test holds the two equal."""
    return {
        "name": package.name,
        "title": package.title,
        "description": package.description,
        "type": package.type,
        "owner": package.owner,
        "visibility": package.visibility,
        "enabled": package.enabled,
        "tags": list(package.tags),
        "categories": list(package.category_names),
        "latest_version": package.latest_version,
        "has_logo": package.has_logo,
        "created_at": package.created_at.isoformat(),
        "updated_at": package.updated_at.isoformat(),
    }


class PackageList(Schema):
    items = Dumped(Package, many=True, required=True)  # made by `listed_package`
    next_cursor = fields.String(allow_none=True, required=True)


class PackagePatch(Schema):
    title = fields.String(validate=validate.Length(max=200))
    description = fields.String(validate=validate.Length(max=10_000))
    tags = fields.List(fields.String(validate=TAG), validate=validate.Length(max=32))
    categories = fields.List(
        fields.String(validate=validate.Length(1, 64)), validate=validate.Length(max=16)
    )
    visibility = fields.String(validate=VISIBILITY)
    enabled = fields.Boolean()


class VersionPatch(Schema):
    yanked = fields.Boolean(required=True)


class VersionList(Schema):
    items = fields.List(fields.Nested(VersionSummary), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
