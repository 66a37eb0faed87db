"""Packages and versions: publishing, metadata, yanking and deletion (finding them:
package_listing)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from catalog.auth import Principal, require_role
from catalog.errors import Conflict, Forbidden, NotFound, ValidationFailed
from catalog.models import Category, Package, PackageVersion
from catalog.models.common import utcnow
from catalog.services import audit
from catalog.services.blobs import BlobStore
from catalog.services.package_listing import visible_to
from catalog.services.package_search import short_name
from packages.limits import DEFAULT_LIMITS, Limits
from packages.manifest import Manifest
from packages.package import LoadedPackage, load_package
from packages.versions import version_key

# Checks that refuse deleting a package in use; each returns a reason or None.
# Environments register theirs, so this module needs to know nothing of them.
PackageInUseCheck = Callable[[Session, Package, str | None], str | None]
IN_USE_CHECKS: list[PackageInUseCheck] = []

# -- visibility ----------------------------------------------------------------


def get_package(session: Session, principal: Principal, name: str) -> Package:
    """A visible package by name; 404 exactly as for a missing one otherwise."""
    package = session.scalar(select(Package).where(Package.name == name, visible_to(principal)))
    if package is None:
        raise NotFound(f"no package {name!r}")
    return package


def owned_package(session: Session, principal: Principal, name: str) -> Package:
    """A package the principal may change: its tenant's (publisher) or any (admin)."""
    package = get_package(session, principal, name)
    require_role(principal, "publisher")
    if not principal.is_admin and package.tenant_id != principal.tenant_id:
        raise Forbidden(f"package {name!r} belongs to another tenant")
    return package


def get_version(session: Session, principal: Principal, name: str, version: str) -> PackageVersion:
    package = get_package(session, principal, name)
    found = session.scalar(
        select(PackageVersion).where(
            PackageVersion.package_id == package.id, PackageVersion.version == version
        )
    )
    if found is None:
        raise NotFound(f"package {name!r} has no version {version!r}")
    return found


# -- publishing ----------------------------------------------------------------


def _categories(session: Session, names: list[str]) -> list[Category]:
    found = {c.name: c for c in session.scalars(select(Category).where(Category.name.in_(names)))}
    missing = [
        {"path": f"categories[{i}]", "message": f"no category {n!r}"}
        for i, n in enumerate(names)
        if n not in found
    ]
    if missing:
        raise ValidationFailed("unknown categories", errors=missing)
    return [found[n] for n in dict.fromkeys(names)]


def _index_text(package: Package) -> None:
    """Refresh the lower-cased columns that `q` and `tag` filter on and a search ranks by
    (the terms of `search_text` follow it on flush: catalog.services.package_search)."""
    package.short_name = short_name(package.name)
    package.search_text = " ".join(
        [package.name, package.title, package.description, *package.tags]
    ).lower()
    package.tag_index = "," + "".join(f"{t.lower()}," for t in package.tags)


def _refresh_summary(session: Session, package: Package) -> None:
    """Title, description, tags and latest version follow the newest non-yanked version."""
    session.refresh(package, ["versions"])
    versions = [v for v in package.versions_newest_first if not v.yanked]
    package.latest_version = versions[0].version if versions else None
    _index_text(package)


def publish(
    session: Session,
    principal: Principal,
    blobs: BlobStore,
    body: Callable[[], BinaryIO],
    max_bytes: int,
    *,
    visibility: str = "private",
    categories: list[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    expected_digest: str | None = None,
) -> PackageVersion:
    """Receive an archive, validate it and record it as a new version; no row or blob on failure.

    `body` gives the upload's bytes: it is read only once the caller may publish. The archive
    is hashed as it is received and opened once, for its manifest and logo alike. With
    `expected_digest` (what an offline bundle listed), other bytes are refused.
    """
    require_role(principal, "publisher")
    with blobs.receive(body(), max_bytes) as (archive, digest, size):
        if expected_digest is not None and digest != expected_digest:
            message = f"the archive received is {digest}, not {expected_digest}"
            raise ValidationFailed(message, errors=[{"path": "digest", "message": message}])
        if visibility == "public" and not principal.is_admin:
            raise Forbidden("only an admin may publish a public package")
        loaded = load_package(archive, limits)
        return _record(
            session, principal, blobs, loaded, (archive, digest, size), visibility, categories or []
        )


def _locked_package(session: Session, principal: Principal, manifest: Manifest) -> Package | None:
    """The package this version joins, if it exists; refused if taken or holding the version."""
    # Locked: concurrent uploads of one package's versions take turns to move its summary.
    package = session.scalar(
        select(Package)
        .where(Package.name == manifest.name)
        .options(lazyload(Package.categories))  # read only if this upload sets them
        .with_for_update(of=Package)
    )
    if package is not None and package.tenant_id != principal.tenant_id and not principal.is_admin:
        # Public or private, whoever holds it: one answer, so it tells no owner or visibility.
        raise name_taken(manifest.name)
    if package is not None and session.scalar(
        select(PackageVersion.id).where(
            PackageVersion.package_id == package.id, PackageVersion.version == manifest.version
        )
    ):
        raise Conflict(f"{manifest.name} {manifest.version} is published already")
    return package


def _record(
    session: Session,
    principal: Principal,
    blobs: BlobStore,
    loaded: LoadedPackage,
    received: tuple[Path, str, int],
    visibility: str,
    categories: list[str],
) -> PackageVersion:
    """The new version's rows and blobs, committed together or not at all."""
    archive, digest, size = received
    manifest = loaded.manifest
    package = _locked_package(session, principal, manifest)
    chosen = _categories(session, categories)
    logo_digest, logo_new, stored = None, False, False
    package_is_new = package is None
    # From the first blob written to the commit: any failure (a full disk too) forgets the
    # blobs this call wrote, so a rejected upload leaves no row and no blob behind.
    try:
        if loaded.logo is not None:
            logo_digest, logo_new = blobs.store_bytes(loaded.logo)
        if package is None:
            package = Package(
                name=manifest.name, tenant_id=principal.tenant_id, visibility=visibility
            )
            session.add(package)
        _apply_manifest(package, manifest, chosen, logo_digest)
        version = PackageVersion(
            package=package,
            version=manifest.version,
            digest=digest,
            size=size,
            manifest=manifest.raw,
        )
        session.add(version)
        session.flush()
        audit.record(
            session,
            principal,
            "package.publish",
            "package_version",
            f"{manifest.name}@{manifest.version}",
            tenant_id=package.tenant_id,
            detail={"digest": digest, "size": size},
        )
        stored = blobs.store(archive, digest)
        session.commit()
    except IntegrityError:
        session.rollback()
        _forget(blobs, (digest, stored), (logo_digest, logo_new))
        if package_is_new:  # another upload took the name first, perhaps another tenant's
            raise name_taken(manifest.name) from None
        raise Conflict(f"{manifest.name} {manifest.version} is published already") from None
    except BaseException:
        session.rollback()
        _forget(blobs, (digest, stored), (logo_digest, logo_new))
        raise
    return version


def name_taken(name: str) -> Conflict:
    """The answer to publishing a name another tenant holds: neither whose nor how visible."""
    return Conflict(f"the name {name!r} is taken")


def _apply_manifest(package, manifest, categories, logo_digest) -> None:
    """The package's summary follows its newest version that is not yanked: the new one, if
    it is newer than the latest so far (no other version needs reading); an older upload
    changes none of it."""
    latest = package.latest_version
    if latest is None or version_key(manifest.version) > version_key(latest):
        package.latest_version = manifest.version
        package.type = manifest.type
        package.title = manifest.title or ""
        package.description = manifest.description or ""
        package.tags = list(manifest.tags or [])
        if logo_digest:
            package.logo_digest = logo_digest
        _index_text(package)
    if categories:
        package.categories = categories
    package.updated_at = utcnow()


def _forget(blobs: BlobStore, *written: tuple[str | None, bool]) -> None:
    for digest, new in written:
        if digest and new:
            blobs.delete(digest)


# -- changing ------------------------------------------------------------------


def update_package(session: Session, principal: Principal, name: str, changes: dict) -> Package:
    package = owned_package(session, principal, name)
    if changes.get("visibility") == "public" and not principal.is_admin:
        raise Forbidden("only an admin may make a package public")
    for field, value in changes.items():
        if field == "categories":
            package.categories = _categories(session, value)
        else:
            setattr(package, field, value)
    _index_text(package)
    package.updated_at = utcnow()
    audit.record(
        session,
        principal,
        "package.update",
        "package",
        package.name,
        tenant_id=package.tenant_id,
        detail={"fields": sorted(changes)},
    )
    session.commit()
    return package


def _refuse_in_use(session: Session, package: Package, version: str | None) -> None:
    for check in IN_USE_CHECKS:
        reason = check(session, package, version)
        if reason:
            raise Conflict(reason)


def _unreferenced(session: Session, digests: set[str]) -> set[str]:
    used = set(
        session.scalars(select(PackageVersion.digest).where(PackageVersion.digest.in_(digests)))
    )
    used |= set(
        session.scalars(select(Package.logo_digest).where(Package.logo_digest.in_(digests)))
    )
    return digests - used


def delete_package(session: Session, principal: Principal, blobs: BlobStore, name: str) -> None:
    package = owned_package(session, principal, name)
    _refuse_in_use(session, package, None)
    digests = {v.digest for v in package.versions}
    if package.logo_digest is not None:
        digests.add(package.logo_digest)
    session.delete(package)  # its loaded versions go with it (cascade)
    audit.record(session, principal, "package.delete", "package", name, tenant_id=package.tenant_id)
    session.flush()
    orphans = _unreferenced(session, digests)
    session.commit()
    for digest in orphans:  # after the commit: a failed commit keeps every blob
        blobs.delete(digest)


def set_yanked(
    session: Session, principal: Principal, name: str, version: str, yanked: bool
) -> PackageVersion:
    owned_package(session, principal, name)
    found = get_version(session, principal, name, version)
    found.yanked = yanked
    _refresh_summary(session, found.package)
    found.package.updated_at = utcnow()
    action = "package.yank" if yanked else "package.unyank"
    audit.record(
        session,
        principal,
        action,
        "package_version",
        f"{name}@{version}",
        tenant_id=found.package.tenant_id,
    )
    session.commit()
    return found


def delete_version(
    session: Session, principal: Principal, blobs: BlobStore, name: str, version: str
) -> None:
    package = owned_package(session, principal, name)
    found = get_version(session, principal, name, version)
    if len(package.versions) == 1:
        raise Conflict(f"{version} is the only version of {name!r}; delete the package instead")
    _refuse_in_use(session, package, version)
    digest = found.digest
    session.delete(found)
    session.flush()
    _refresh_summary(session, package)
    audit.record(
        session,
        principal,
        "package.version.delete",
        "package_version",
        f"{name}@{version}",
        tenant_id=package.tenant_id,
    )
    orphans = _unreferenced(session, {digest})
    session.commit()
    for orphan in orphans:
        blobs.delete(orphan)
