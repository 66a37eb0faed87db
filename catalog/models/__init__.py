"""Database models; Alembic migrations create their tables."""

from catalog.db import Base
from catalog.models.audit import AuditEvent
from catalog.models.deployment import (
    DEPLOYMENT_STATUSES,
    FINISHED,
    ContainerRecord,
    Deployment,
    DeploymentEvent,
    EnvironmentLease,
    Task,
)
from catalog.models.environment import ENVIRONMENT_STATUSES, App, Environment, HostPort
from catalog.models.host import Host
from catalog.models.package import Category, Package, PackageVersion, package_categories
from catalog.models.template import Template
from catalog.models.tenant import ROLES, Tenant, Token

__all__ = [
    "DEPLOYMENT_STATUSES",
    "ENVIRONMENT_STATUSES",
    "FINISHED",
    "ROLES",
    "App",
    "AuditEvent",
    "Base",
    "Category",
    "ContainerRecord",
    "Deployment",
    "DeploymentEvent",
    "Environment",
    "EnvironmentLease",
    "Host",
    "HostPort",
    "Package",
    "PackageVersion",
    "Task",
    "Template",
    "Tenant",
    "Token",
    "package_categories",
]
