"""Packages and versions: publishing, search, metadata, yanking and deletion."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Select, and_, bindparam, exists, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from catalog.auth import Principal, require_role
from catalog.db import PlannedOnce
from catalog.errors import Conflict, Forbidden, NotFound, ValidationFailed
from catalog.models import Category, Package, PackageVersion, Tenant, package_categories
from catalog.models.common import utcnow
from catalog.services import audit
from catalog.services.blobs import BlobStore
from catalog.services.pagination import decode_cursor, encode_cursor
from packages.archive import open_archive
from packages.limits import Limits
from packages.package import LOGO, load_package
from packages.versions import version_key

# Checks that refuse deleting a package in use; each returns a reason or None.
# Environments register theirs, so this module needs to know nothing of them.
PackageInUseCheck = Callable[[Session, Package, str | None], str | None]
IN_USE_CHECKS: list[PackageInUseCheck] = []

SORTS = ("name", "-created", "-updated")


@dataclass(frozen=True)
class PackageQuery:
    q: str | None = None
    category: str | None = None
    tag: str | None = None
    type: str | None = None
    owned: bool = False
    sort: str = "name"
    limit: int = 20
    cursor: str | None = None


# -- visibility ----------------------------------------------------------------


def visible_to(principal: Principal):
    """SQL condition: the packages this principal may see."""
    if principal.is_admin:
        return True
    return _visible_to_tenant(principal.tenant_id)


def _visible_to_tenant(tenant_id):
    """A tenant sees its own packages and the enabled public ones (`tenant_id`: a value or a
    bound parameter)."""
    return or_(
        Package.tenant_id == tenant_id,
        and_(Package.visibility == "public", Package.enabled.is_(True)),
    )


def get_package(session: Session, principal: Principal, name: str) -> Package:
    """A visible package by name; 404 exactly as for a missing one otherwise."""
    package = session.scalar(select(Package).where(Package.name == name, visible_to(principal)))
    if package is None:
        raise NotFound(f"no package {name!r}")
    return package


def package_detail(
    connection: Connection, principal: Principal, name: str
) -> tuple[PackageSummary, list[VersionSummary]]:
    """A visible package, as listings show it, and its versions newest first: plain rows."""
    values = {"name": name, "tenant_id": principal.tenant_id}
    found = _planned_detail(principal.is_admin).rows(connection, values)
    if not found:
        raise NotFound(f"no package {name!r}")
    package = _summary(found[0])
    versions = [
        VersionSummary(*version)
        for version in _VERSIONS.rows(connection, {"package_id": package.id})
    ]
    versions.sort(key=lambda v: version_key(v.version), reverse=True)
    return package, versions


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
    """Refresh the lower-cased columns that `q` and `tag` filter on."""
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
    archive: Path,
    digest: str,
    size: int,
    *,
    visibility: str = "private",
    categories: list[str] | None = None,
    limits: Limits | None = None,
) -> PackageVersion:
    """Validate a received archive and record it as a new version; no row or blob on failure."""
    require_role(principal, "publisher")
    if visibility == "public" and not principal.is_admin:
        raise Forbidden("only an admin may publish a public package")
    loaded = load_package(archive, limits) if limits else load_package(archive)
    manifest = loaded.manifest
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
    chosen = _categories(session, categories or [])
    logo_digest, logo_new, stored = None, False, False
    package_is_new = package is None
    # From the first blob written to the commit: any failure (a full disk too) forgets the
    # blobs this call wrote, so a rejected upload leaves no row and no blob behind.
    try:
        if loaded.has_logo:
            with open_archive(archive) as opened:
                logo_digest, logo_new = blobs.store_bytes(opened.read(LOGO))
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


# -- listing -------------------------------------------------------------------


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class PackageSummary(NamedTuple):
    """A package as listings show it, read as plain columns (no ORM objects to build).

    The fields are the listing statement's columns, in its order.
    """

    id: str
    name: str
    title: str
    description: str
    type: str
    owner: str
    visibility: str
    enabled: bool
    tags: list[str]
    category_names: list[str]
    latest_version: str | None
    has_logo: bool
    created_at: datetime
    updated_at: datetime


class VersionSummary(NamedTuple):
    """A version as a package's detail lists it (its manifest is the version resource's)."""

    version: str
    digest: str
    size: int
    yanked: bool
    created_at: datetime


_VERSIONS = PlannedOnce(
    "catalog_package_versions",
    select(
        PackageVersion.version,
        PackageVersion.digest,
        PackageVersion.size,
        PackageVersion.yanked,
        PackageVersion.created_at,
    ).where(PackageVersion.package_id == bindparam("package_id")),
)


# Each listed package's categories, as one comma-separated string (category names are
# slugs), aggregated by the database in the same statement: string_agg / group_concat.
_CATEGORY_NAMES = (
    select(func.aggregate_strings(package_categories.c.category, ","))
    .where(package_categories.c.package_id == Package.id)
    .scalar_subquery()
)
_SUMMARY_COLUMNS = (
    Package.id,
    Package.name,
    Package.title,
    Package.description,
    Package.type,
    Tenant.name.label("owner"),
    Package.visibility,
    Package.enabled,
    Package.tags,
    _CATEGORY_NAMES.label("category_names"),
    Package.latest_version,
    Package.logo_digest.is_not(None).label("has_logo"),
    Package.created_at,
    Package.updated_at,
)


@dataclass(frozen=True)
class _Shape:
    """What a listing's SQL depends on; the values themselves are bound parameters."""

    admin: bool
    words: int
    category: bool
    tag: bool
    type: bool
    owned: bool
    cursor: bool
    sort: str


def _visible_summaries(admin: bool) -> Select:
    """Listing columns of the packages the caller may see (`tenant_id` bound unless admin)."""
    query = select(*_SUMMARY_COLUMNS).join(Tenant, Tenant.id == Package.tenant_id)
    return query if admin else query.where(_visible_to_tenant(bindparam("tenant_id")))


@functools.lru_cache(maxsize=2)
def _planned_detail(admin: bool) -> PlannedOnce:
    statement = _visible_summaries(admin).where(Package.name == bindparam("name"))
    return PlannedOnce(f"catalog_package_{'a' if admin else 't'}", statement)


@functools.lru_cache(maxsize=512)
def _listing_statement(shape: _Shape) -> Select:
    """The listing's statement for one shape, built once.

    SQLAlchemy memoizes a statement's cache key on the statement object, so executing the
    same object with new parameters skips rebuilding and re-keying it on every request.
    """
    query = _visible_summaries(shape.admin)
    for i in range(shape.words):
        query = query.where(Package.search_text.like(bindparam(f"word{i}"), "\\"))
    if shape.category:
        query = query.where(
            exists().where(
                package_categories.c.package_id == Package.id,
                package_categories.c.category == bindparam("category"),
            )
        )
    if shape.tag:
        query = query.where(Package.tag_index.like(bindparam("tag"), "\\"))
    if shape.type:
        query = query.where(Package.type == bindparam("type"))
    if shape.owned:
        query = query.where(Package.tenant_id == bindparam("tenant_id"))
    if shape.sort == "name":
        if shape.cursor:
            query = query.where(Package.name > bindparam("after_name"))
        order = [Package.name.asc()]
    else:
        column = Package.created_at if shape.sort == "-created" else Package.updated_at
        if shape.cursor:
            moment, last_id = bindparam("after_moment"), bindparam("after_id")
            query = query.where(or_(column < moment, and_(column == moment, Package.id < last_id)))
        order = [column.desc(), Package.id.desc()]
    return query.order_by(*order).limit(bindparam("limit"))


@functools.lru_cache(maxsize=512)
def _planned_listing(shape: _Shape) -> PlannedOnce:
    flags = "".join(
        letter
        for letter, on in zip(
            "actyok",
            (shape.admin, shape.category, shape.tag, shape.type, shape.owned, shape.cursor),
            strict=True,
        )
        if on
    )
    sort = shape.sort.lstrip("-")
    return PlannedOnce(f"catalog_list_{sort}_{flags}", _listing_statement(shape))


def _cursor_values(sort: str, cursor: str) -> dict:
    if sort == "name":
        (name,) = decode_cursor(cursor, 1)
        return {"after_name": name}
    moment_text, last_id = decode_cursor(cursor, 2)
    try:
        moment = datetime.fromisoformat(moment_text)
    except (TypeError, ValueError):
        raise ValidationFailed(
            "the cursor is not valid", errors=[{"path": "cursor", "message": "invalid cursor"}]
        ) from None
    return {"after_moment": moment, "after_id": last_id}


_CATEGORIES_AT = PackageSummary._fields.index("category_names")


def _summary(row) -> PackageSummary:
    names = row[_CATEGORIES_AT]
    return PackageSummary(
        *row[:_CATEGORIES_AT],
        sorted(names.split(",")) if names else [],
        *row[_CATEGORIES_AT + 1 :],
    )


def list_packages(
    connection: Connection, principal: Principal, params: PackageQuery
) -> tuple[list[PackageSummary], str | None]:
    words = params.q.lower().split() if params.q else []
    shape = _Shape(
        admin=principal.is_admin,
        words=len(words),
        category=bool(params.category),
        tag=bool(params.tag),
        type=bool(params.type),
        owned=params.owned,
        cursor=bool(params.cursor),
        sort=params.sort,
    )
    values = {
        "tenant_id": principal.tenant_id,
        "category": params.category,
        "tag": f"%,{_escape_like(params.tag.lower())},%" if params.tag else None,
        "type": params.type,
        "limit": params.limit + 1,
        **{f"word{i}": f"%{_escape_like(word)}%" for i, word in enumerate(words)},
        **(_cursor_values(params.sort, params.cursor) if params.cursor else {}),
    }
    # On a connection: plain rows, without the ORM's result machinery (a tenth of the CPU).
    if shape.words:  # how best to search depends on the words: planned for each search
        rows = connection.execute(_listing_statement(shape), values).all()
    else:
        rows = _planned_listing(shape).rows(connection, values)
    page, more = [_summary(row) for row in rows[: params.limit]], len(rows) > params.limit
    if not more or not page:
        return page, None
    last = page[-1]
    if params.sort == "name":
        return page, encode_cursor([last.name])
    moment = last.created_at if params.sort == "-created" else last.updated_at
    return page, encode_cursor([moment.isoformat(), last.id])


def count_packages(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Package)) or 0


# -- changing ------------------------------------------------------------------

PATCHABLE = ("title", "description", "tags", "categories", "visibility", "enabled")


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
    digests = {v.digest for v in package.versions} | ({package.logo_digest} - {None})
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
