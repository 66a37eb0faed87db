"""Packages and their versions: publish, search, show, change, yank, download, delete."""

from __future__ import annotations

import logging

from flask import request, send_file, url_for
from flask_smorest import Blueprint
from sqlalchemy.exc import SQLAlchemyError

from catalog import current_settings
from catalog.api.context import blobs, connection, db, package_limits, principal, publisher
from catalog.api.docs import BINARY, problems
from catalog.errors import NotFound, UnsupportedMediaType, ValidationFailed
from catalog.ratelimit import limiter
from catalog.schemas import packages as schemas
from catalog.services import package_listing as listing
from catalog.services import packages as service
from catalog.services import webhooks
from packages.archive import sniff_kind

log = logging.getLogger(__name__)

blp = Blueprint("packages", __name__, description="Application packages and versions")

RAW_TYPES = (
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/octet-stream",
)
ARCHIVE_TYPES = {"zip": ("application/zip", "zip"), "tar.gz": ("application/gzip", "tar.gz")}

UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        **{t: {"schema": BINARY} for t in RAW_TYPES},
    },
}
LOCATION = {"Location": {"description": "The new version", "schema": {"type": "string"}}}
ARCHIVE_RESPONSE = {
    "content": {"application/zip": {"schema": BINARY}, "application/gzip": {"schema": BINARY}},
    "headers": {
        "ETag": {"description": "The archive's sha256, hex", "schema": {"type": "string"}},
        "Digest": {"description": "`sha-256=<hex>`", "schema": {"type": "string"}},
    },
}


def _upload_stream():
    """The archive's bytes as a stream: the multipart field `file` or the raw body."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ValidationFailed(
                "the archive is missing",
                errors=[{"path": "file", "message": "a multipart field 'file' is required"}],
            )
        return upload.stream
    if mimetype in RAW_TYPES:
        return request.stream
    raise UnsupportedMediaType(
        f"send the archive as multipart/form-data (field 'file') or as {', '.join(RAW_TYPES[:2])}"
    )


@blp.route("/packages", methods=["POST"])
@limiter.limit(lambda: current_settings().upload_rate_limit)
@problems(403, 409, 413, 415, 429, 507)
@blp.arguments(schemas.UploadArgs(), location="query")
@blp.response(201, schemas.Version, headers=LOCATION)
@blp.doc(requestBody=UPLOAD_BODY)
def upload(args):
    """Publish a package version from an archive (publisher)."""
    version = service.publish(
        db(),
        principal(),
        blobs(),
        _upload_stream,
        current_settings().max_upload_bytes,
        visibility=args["visibility"],
        categories=args["categories"],
        limits=package_limits(),
        expected_digest=args["digest"],
    )
    location = url_for("packages.show_version", name=version.package.name, version=version.version)
    package = version.package
    data = {"package": package.name, "version": version.version, "visibility": package.visibility}
    try:
        webhooks.tell(db(), publisher(), package.tenant_id, "package.published", data)
    except SQLAlchemyError as exc:  # the version is published; only the telling is lost
        db().rollback()
        log.warning(
            "could not tell the webhooks of %s %s: %s", data["package"], data["version"], exc
        )
    return version, 201, {"Location": location}


@blp.route("/packages", methods=["GET"])
@blp.arguments(schemas.PackageArgs(), location="query")
@blp.response(200, schemas.PackageList)
def list_packages(args):
    """Search and list the packages the caller may see (keyset-paginated)."""
    items, cursor = listing.list_packages(connection(), principal(), listing.PackageQuery(**args))
    return {"items": [schemas.listed_package(p) for p in items], "next_cursor": cursor}


@blp.route("/packages/<name>", methods=["GET"])
@blp.response(200, schemas.PackageDetail)
def show_package(name):
    """A package with its versions, newest first."""
    package, versions = listing.package_detail(connection(), principal(), name)
    return {**package._asdict(), "versions_newest_first": versions}


@blp.route("/packages/<name>", methods=["PATCH"])
@problems(403)
@blp.arguments(schemas.PackagePatch())
@blp.response(200, schemas.Package)
def update_package(changes, name):
    """Change a package's metadata (owner publisher or admin)."""
    return service.update_package(db(), principal(), name, changes)


@blp.route("/packages/<name>", methods=["DELETE"])
@problems(403, 409)
@blp.response(204)
def delete_package(name):
    """Delete a package and all its versions; refused while an environment uses it."""
    service.delete_package(db(), principal(), blobs(), name)


@blp.route("/packages/<name>/versions", methods=["GET"])
@blp.response(200, schemas.VersionList)
def list_versions(name):
    """Versions of a package, newest first."""
    package = service.get_package(db(), principal(), name)
    return {"items": package.versions_newest_first, "next_cursor": None}


@blp.route("/packages/<name>/versions/<version>", methods=["GET"])
@blp.response(200, schemas.Version)
def show_version(name, version):
    """A version: manifest, parameter schema, digest and size."""
    return service.get_version(db(), principal(), name, version)


@blp.route("/packages/<name>/versions/<version>", methods=["PATCH"])
@problems(403)
@blp.arguments(schemas.VersionPatch())
@blp.response(200, schemas.Version)
def update_version(body, name, version):
    """Yank or unyank a version (hidden from resolution, still deployable where pinned)."""
    return service.set_yanked(db(), principal(), name, version, body["yanked"])


@blp.route("/packages/<name>/versions/<version>", methods=["DELETE"])
@problems(403, 409)
@blp.response(204)
def delete_version(name, version):
    """Delete one version; refused for the last one and while an environment uses it."""
    service.delete_version(db(), principal(), blobs(), name, version)


@blp.route(
    "/packages/<name>/versions/<version>/archive", methods=["GET"], endpoint="VersionArchive"
)
@problems(304)
@blp.response(200, description="The archive as uploaded")
@blp.doc(responses={200: ARCHIVE_RESPONSE})
def download_archive(name, version):
    """The archive exactly as uploaded; its ETag is the digest."""
    found = service.get_version(db(), principal(), name, version)
    path = blobs().path_for(found.digest)
    if not path.is_file():
        raise NotFound(f"the archive of {name} {version} is missing from the blob store")
    with path.open("rb") as fh:
        kind = sniff_kind(fh.read(512)) or "tar.gz"
    mimetype, suffix = ARCHIVE_TYPES[kind]
    response = send_file(
        path,
        mimetype=mimetype,
        download_name=f"{name}-{version}.{suffix}",
        as_attachment=True,
        etag=found.digest.removeprefix("sha256:"),
        conditional=True,
    )
    response.headers["Digest"] = f"sha-256={found.digest.removeprefix('sha256:')}"
    return response


@blp.route("/packages/<name>/logo", methods=["GET"])
@problems(304)
@blp.response(200, description="The package's logo")
@blp.doc(responses={200: {"content": {"image/png": {"schema": BINARY}}}})
def logo(name):
    """The logo of the package's newest version that has one."""
    package = service.get_package(db(), principal(), name)
    if package.logo_digest is None:
        raise NotFound(f"package {name!r} has no logo")
    path = blobs().path_for(package.logo_digest)
    return send_file(path, mimetype="image/png", etag=package.logo_digest[7:], conditional=True)
