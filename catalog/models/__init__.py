"""Database models; Alembic migrations create their tables."""

from catalog.db import Base
from catalog.models.audit import AuditEvent
from catalog.models.package import Category, Package, PackageVersion, package_categories
from catalog.models.tenant import ROLES, Tenant, Token

__all__ = [
    "ROLES",
    "AuditEvent",
    "Base",
    "Category",
    "Package",
    "PackageVersion",
    "Tenant",
    "Token",
    "package_categories",
]
