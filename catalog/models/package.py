"""Packages, their immutable versions, and the admin-managed categories."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.db import Base
from catalog.models.common import created_column, id_column, utcnow
from catalog.models.tenant import Tenant
from packages.versions import version_key

package_categories = Table(
    "package_categories",
    Base.metadata,
    Column("package_id", ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True),
    Column("category", ForeignKey("categories.name", ondelete="CASCADE"), primary_key=True),
)


# The term index of `q` searches (catalog.services.package_search): every term of a
# package's search text, once per package, by the package's name, so that a term's packages
# are read in the listing's order...
package_terms = Table(
    "package_terms",
    Base.metadata,
    Column("term", String(64), primary_key=True),
    Column(
        "package_name",
        ForeignKey("packages.name", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)


class SearchTerm(Base):
    """...and every distinct term once: the lexicon a searched word is looked up in."""

    __tablename__ = "search_terms"

    term: Mapped[str] = mapped_column(String(64), primary_key=True)


class Category(Base):
    __tablename__ = "categories"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    created_at: Mapped[datetime] = created_column()


class Package(Base):
    __tablename__ = "packages"
    __table_args__ = (
        Index("ix_packages_created", "created_at", "id"),
        Index("ix_packages_updated", "updated_at", "id"),
        Index("ix_packages_visibility_tenant", "visibility", "tenant_id"),
        # Prefix matches of the short name in its order: the first tier of a ranked search.
        Index("ix_packages_short_name", "short_name", "name"),
    )

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    # The name's last segment, lower-cased (`redis` of `org.example.redis`): what a search
    # ranks by.
    # Compared byte by byte (collation "C" on PostgreSQL), so that its b-tree serves a
    # prefix `LIKE` in that same order, whatever the database's collation.
    short_name: Mapped[str] = mapped_column(
        String(128).with_variant(String(128, collation="C"), "postgresql"),
        default="",
        nullable=False,
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    visibility: Mapped[str] = mapped_column(String(16), default="private", nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    # Lower-cased name, title, description and tags: what `q` searches.
    search_text: Mapped[str] = mapped_column(Text, default="", nullable=False)
    # ",tag1,tag2," so that one tag matches exactly with LIKE '%,tag,%'.
    tag_index: Mapped[str] = mapped_column(Text, default=",", nullable=False)
    latest_version: Mapped[str | None] = mapped_column(String(64))
    logo_digest: Mapped[str | None] = mapped_column(String(71))
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )

    tenant: Mapped[Tenant] = relationship(lazy="joined")
    categories: Mapped[list[Category]] = relationship(
        secondary=package_categories, lazy="selectin", order_by=Category.name
    )
    versions: Mapped[list[PackageVersion]] = relationship(
        back_populates="package", cascade="all, delete-orphan", passive_deletes=True
    )

    # What listings show besides the columns (a `PackageSummary` carries the same names).
    @property
    def owner(self) -> str:
        return self.tenant.name

    @property
    def category_names(self) -> list[str]:
        return sorted(c.name for c in self.categories)  # as listings sort them

    @property
    def has_logo(self) -> bool:
        return self.logo_digest is not None

    @property
    def versions_newest_first(self) -> list[PackageVersion]:
        return sorted(self.versions, key=lambda v: version_key(v.version), reverse=True)


class PackageVersion(Base):
    __tablename__ = "package_versions"
    __table_args__ = (UniqueConstraint("package_id", "version"),)

    id: Mapped[str] = id_column()
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64), nullable=False)
    digest: Mapped[str] = mapped_column(String(71), index=True, nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    manifest: Mapped[dict] = mapped_column(JSON, nullable=False)
    yanked: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = created_column()

    package: Mapped[Package] = relationship(back_populates="versions")
