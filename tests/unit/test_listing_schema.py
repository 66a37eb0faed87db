"""Listings write their items out by hand (`listed_package`); they must equal the schema's dump."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from catalog.schemas.packages import Package, PackageList, listed_package
from catalog.services.package_listing import _SUMMARY_COLUMNS, PackageSummary

SUMMARY = PackageSummary(
    id="p1",
    name="org.example.web",
    title="Web",
    description="A web server\nwith two lines",
    type="application",
    owner="acme",
    visibility="public",
    enabled=True,
    tags=["web", "http"],
    category_names=["databases", "web"],
    latest_version="1.2.0",
    has_logo=True,
    created_at=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    updated_at=datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC),
)


@pytest.mark.parametrize(
    "summary",
    [
        SUMMARY,
        SUMMARY._replace(tags=[], category_names=[], latest_version=None, has_logo=False),
        SUMMARY._replace(enabled=False, visibility="private", title="", description=""),
        # SQLite gives naive datetimes back.
        SUMMARY._replace(created_at=datetime(2026, 1, 2), updated_at=datetime(2026, 1, 3)),
    ],
)
def test_a_listed_package_is_what_the_package_schema_dumps(summary):
    assert listed_package(summary) == Package().dump(summary)


def test_the_page_passes_listed_items_through_unchanged():
    page = {"items": [listed_package(SUMMARY)], "next_cursor": None}
    assert PackageList().dump(page) == {"items": [Package().dump(SUMMARY)], "next_cursor": None}


def test_the_summary_fields_are_the_listing_columns_in_order():
    """Listing rows become summaries by position."""
    assert tuple(column.key for column in _SUMMARY_COLUMNS) == PackageSummary._fields
