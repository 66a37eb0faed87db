"""Finding packages: what a caller may see, the listing and its search, a package's detail.

Listings are read as plain rows on a connection, with statements planned once per shape.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    Select,
    UnaryExpression,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.engine import Connection

from catalog.auth import Principal
from catalog.db import PlannedOnce
from catalog.errors import NotFound, ValidationFailed
from catalog.models import Package, PackageVersion, Tenant, package_categories, package_terms
from catalog.services.package_search import Driver, driver, escape_like, holds, short_name
from catalog.services.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from packages.versions import version_key


@dataclass(frozen=True)
class PackageQuery:
    q: str | None = None
    category: str | None = None
    tag: str | None = None
    type: str | None = None
    owned: bool = False
    # "relevance" (the default with `q`), "name" (the default without), "-created", "-updated"
    sort: str | None = None
    limit: int = DEFAULT_LIMIT
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


# -- listing -------------------------------------------------------------------


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
    among: bool = False  # only the search's candidates (names bound as `among`)
    postings: bool = False  # driven by the postings of one term (`drive_term`), in name order
    tier: int | None = None  # one tier of a ranked search (RANK_TIERS)


def _visible_summaries(admin: bool) -> Select:
    """Listing columns of the packages the caller may see (`tenant_id` bound unless admin)."""
    query = select(*_SUMMARY_COLUMNS).join(Tenant, Tenant.id == Package.tenant_id)
    return query if admin else query.where(_visible_to_tenant(bindparam("tenant_id")))


@functools.lru_cache(maxsize=2)
def _planned_detail(admin: bool) -> PlannedOnce:
    statement = _visible_summaries(admin).where(Package.name == bindparam("name"))
    return PlannedOnce(f"catalog_package_{'a' if admin else 't'}", statement)


# A ranked search lists its matches in two tiers: first the packages whose short name begins
# with the query (its words joined by "-", as names are), in short-name order, so that the
# one named exactly so comes first (`redis`, then `redis-commander`), read with the short
# name's index; then the rest, in name order.
_PREFIX: BindParameter[str] = bindparam("rank_prefix")
RANK_TIERS = (Package.short_name.like(_PREFIX, "\\"), ~Package.short_name.like(_PREFIX, "\\"))


@functools.lru_cache(maxsize=512)
def _listing_statement(shape: _Shape) -> Select:
    """The listing's statement for one shape, built once.

    SQLAlchemy memoizes a statement's cache key on the statement object, so executing the
    same object with new parameters skips rebuilding and re-keying it on every request.
    """
    query = _visible_summaries(shape.admin)
    for i in range(shape.words):
        query = query.where(holds(Package.search_text, bindparam(f"word{i}")))
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
    name: Any = Package.name  # what the name order reads: the package's, or the postings'
    if shape.among:
        query = query.where(Package.name.in_(bindparam("among", expanding=True)))
    if shape.postings:
        name = package_terms.c.package_name
        query = query.join(package_terms, name == Package.name).where(
            package_terms.c.term == bindparam("drive_term")
        )
    if shape.tier is not None:
        query = query.where(RANK_TIERS[shape.tier])
    if shape.owned:
        query = query.where(Package.tenant_id == bindparam("tenant_id"))
    if shape.tier == 0:
        if shape.cursor:
            after = tuple_(bindparam("after_short"), bindparam("after_name"))
            query = query.where(tuple_(Package.short_name, Package.name) > after)
        order: list[UnaryExpression[Any]] = [Package.short_name.asc(), Package.name.asc()]
    elif shape.sort == "name":
        if shape.cursor:
            query = query.where(name > bindparam("after_name"))
        order = [name.asc()]
    else:
        column = Package.created_at if shape.sort == "-created" else Package.updated_at
        if shape.cursor:
            moment: BindParameter[datetime] = bindparam("after_moment")
            last_id: BindParameter[str] = bindparam("after_id")
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


def _summary(row: Sequence[Any]) -> PackageSummary:
    names = row[_CATEGORIES_AT]
    return PackageSummary._make(
        (
            *row[:_CATEGORIES_AT],
            sorted(names.split(",")) if names else [],
            *row[_CATEGORIES_AT + 1 :],
        )
    )


def _ranked_cursor(cursor: str) -> tuple[int, str]:
    tier, name = decode_cursor(cursor, 2)
    if tier not in range(len(RANK_TIERS)) or not isinstance(name, str):
        raise ValidationFailed(
            "the cursor is not valid", errors=[{"path": "cursor", "message": "invalid cursor"}]
        )
    return tier, name


def _ranked_page(
    connection: Connection, shape: _Shape, values: dict, words: list[str], params: PackageQuery
) -> tuple[list[PackageSummary], str | None]:
    """A page of a ranked search: tier by tier (RANK_TIERS) until it is full; its cursor is
    the last package's tier and name."""
    rank_name = short_name("-".join(words))
    first, after = _ranked_cursor(params.cursor) if params.cursor else (0, None)
    values = {
        **values,
        "rank_prefix": f"{escape_like(rank_name)}%",
        "after_name": after,
        "after_short": short_name(after) if after else None,
    }
    found: list[tuple[int, PackageSummary]] = []
    for tier in range(first, len(RANK_TIERS)):
        resumed = tier == first and after is not None
        # The first tier is few packages, found by their short name's index.
        here = replace(shape, tier=tier, cursor=resumed, postings=shape.postings and tier > 0)
        statement = _listing_statement(here)
        rows = connection.execute(statement, {**values, "limit": params.limit + 1 - len(found)})
        found += [(tier, _summary(row)) for row in rows]
        if len(found) > params.limit:
            tier, last = found[params.limit - 1]
            return [p for _, p in found[: params.limit]], encode_cursor([tier, last.name])
    return [p for _, p in found], None


def list_packages(
    connection: Connection, principal: Principal, params: PackageQuery
) -> tuple[list[PackageSummary], str | None]:
    words = params.q.lower().split() if params.q else []
    sort = params.sort or ("relevance" if words else "name")
    ranked = sort == "relevance" and bool(words)
    if sort == "relevance":
        sort = "name"  # each tier, and a listing without words, in name order
    if params.cursor and not ranked:
        after = _cursor_values(sort, params.cursor)
    elif params.cursor:
        _ranked_cursor(params.cursor)
    found = driver(connection, words) if words else Driver()
    if found.among == []:
        return [], None  # some word is in no package at all
    shape = _Shape(
        admin=principal.is_admin,
        words=len(words),
        category=bool(params.category),
        tag=bool(params.tag),
        type=bool(params.type),
        owned=params.owned,
        cursor=bool(params.cursor),
        sort=sort,
        among=found.among is not None,
        postings=found.term is not None and sort == "name",
    )
    values = {
        "tenant_id": principal.tenant_id,
        "category": params.category,
        "tag": f"%,{escape_like(params.tag.lower())},%" if params.tag else None,
        "type": params.type,
        "limit": params.limit + 1,
        "among": found.among,
        "drive_term": found.term,
        **{f"word{i}": word for i, word in enumerate(words)},
    }
    if ranked:
        return _ranked_page(connection, shape, values, words, params)
    if params.cursor:
        values.update(after)
    # On a connection: plain rows, without the ORM's result machinery (a tenth of the CPU).
    rows: Sequence[Sequence[Any]]
    if shape.words:  # how best to search depends on the words: planned for each search
        rows = connection.execute(_listing_statement(shape), values).all()
    else:
        rows = _planned_listing(shape).rows(connection, values)
    page, more = [_summary(row) for row in rows[: params.limit]], len(rows) > params.limit
    if not more or not page:
        return page, None
    last = page[-1]
    if sort == "name":
        return page, encode_cursor([last.name])
    moment = last.created_at if sort == "-created" else last.updated_at
    return page, encode_cursor([moment.isoformat(), last.id])
