"""Per-tenant quotas: environments, and the host ports their published container ports hold.

A check locks the tenant's row first, so two requests of one tenant cannot both take the
last place; the worker checks the ports again, under the same lock, as it allocates them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.config import Settings
from catalog.errors import Conflict
from catalog.models import Environment, HostPort, Tenant
from catalog.snapshot import AppSnapshot


@dataclass(frozen=True)
class Quotas:
    """What one tenant may hold, whatever its packages ask for."""

    max_environments: int = 100  # CATALOG_TENANT_MAX_ENVIRONMENTS
    max_published_ports: int = 200  # CATALOG_TENANT_MAX_PUBLISHED_PORTS

    @classmethod
    def from_settings(cls, settings: Settings) -> Quotas:
        return cls(settings.tenant_max_environments, settings.tenant_max_published_ports)


DEFAULT_QUOTAS = Quotas()


class QuotaExceeded(Conflict):
    """A tenant quota would be exceeded; the message names its setting."""


def lock_tenant(session: Session, tenant_id: str) -> None:
    """Hold the tenant's row until the transaction ends (a no-op on SQLite, which has one
    writer at a time anyway)."""
    session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())


def check_environments(session: Session, tenant_id: str, quotas: Quotas) -> None:
    """Refuse one environment more than CATALOG_TENANT_MAX_ENVIRONMENTS."""
    lock_tenant(session, tenant_id)
    count = session.scalars(
        select(func.count()).select_from(Environment).where(Environment.tenant_id == tenant_id)
    ).one()
    if count >= quotas.max_environments:
        raise QuotaExceeded(
            f"the tenant has {count} environments, the most CATALOG_TENANT_MAX_ENVIRONMENTS "
            f"allows ({quotas.max_environments}); delete one first"
        )


def ports_held_elsewhere(session: Session, tenant_id: str, env_id: str) -> int:
    """Host ports the tenant's other environments hold."""
    return session.scalars(
        select(func.count())
        .select_from(HostPort)
        .join(Environment, Environment.id == HostPort.environment_id)
        .where(Environment.tenant_id == tenant_id, Environment.id != env_id)
    ).one()


def published_ports_problem(
    session: Session, tenant_id: str, env_id: str, wanted: int, quotas: Quotas
) -> str | None:
    """Why `wanted` published ports for environment `env_id` break the tenant's quota, if
    they do; locks the tenant's row for the rest of the transaction."""
    lock_tenant(session, tenant_id)
    held = ports_held_elsewhere(session, tenant_id, env_id)
    if held + wanted <= quotas.max_published_ports:
        return None
    return (
        f"this deployment publishes {wanted} port(s) and the tenant's other environments hold "
        f"{held}: more than CATALOG_TENANT_MAX_PUBLISHED_PORTS allows "
        f"({quotas.max_published_ports})"
    )


def published_port_count(apps: list[AppSnapshot]) -> int:
    """Published container ports of a snapshot's apps: each holds a host port."""
    return sum(
        1
        for app in apps
        for service in (app["manifest"].get("services") or {}).values()
        for port in service.get("ports") or ()
        if port.get("publish")
    )


def check_published_ports(
    session: Session, environment: Environment, apps: list[AppSnapshot], quotas: Quotas
) -> None:
    """Refuse a deployment whose published ports would pass the tenant's quota."""
    wanted = published_port_count(apps)
    problem = published_ports_problem(
        session, environment.tenant_id, environment.id, wanted, quotas
    )
    if problem:
        raise QuotaExceeded(problem)
