"""Database models; Alembic migrations create their tables."""

from catalog.db import Base
from catalog.models.audit import AuditEvent
from catalog.models.deployment import (
    FINISHED,
    IN_FLIGHT,
    ContainerRecord,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    EnvironmentLease,
    Task,
    TaskStatus,
)
from catalog.models.environment import (
    App,
    AppStatus,
    Environment,
    EnvironmentStatus,
    HostPort,
)
from catalog.models.host import Host
from catalog.models.image import BundleKey, OfflineImage
from catalog.models.package import (
    Category,
    Package,
    PackageVersion,
    SearchTerm,
    package_categories,
    package_terms,
)
from catalog.models.registry import GuardedRegistry, RegistryCredential
from catalog.models.template import Template
from catalog.models.tenant import ROLES, Tenant, Token
from catalog.models.volume_snapshot import SnapshotStatus, VolumeSnapshot
from catalog.models.webhook import Webhook, WebhookDelivery

__all__ = [
    "FINISHED",
    "IN_FLIGHT",
    "ROLES",
    "App",
    "AppStatus",
    "AuditEvent",
    "Base",
    "BundleKey",
    "Category",
    "ContainerRecord",
    "Deployment",
    "DeploymentEvent",
    "DeploymentStatus",
    "Environment",
    "EnvironmentLease",
    "EnvironmentStatus",
    "GuardedRegistry",
    "Host",
    "HostPort",
    "OfflineImage",
    "Package",
    "PackageVersion",
    "RegistryCredential",
    "SearchTerm",
    "SnapshotStatus",
    "Task",
    "TaskStatus",
    "Template",
    "Tenant",
    "Token",
    "VolumeSnapshot",
    "Webhook",
    "WebhookDelivery",
    "package_categories",
    "package_terms",
]
