"""Removing bundled images nothing needs any more: the tracker of each engine does it every
PRUNE_IMAGES_SECONDS.

Every package version deployed with a bundled image leaves a `catalog.local/<tenant>/...` tag
on the engine (workers/deploy/images.py). Upgrades, deleted environments and deleted versions would
otherwise keep those images, and their disk, for ever. A tag is removed when all of these hold:

- its tenant is one of this catalog's (another catalog on the same engine keeps its own);
- no environment's current revision runs it: the tracker's repair, an action or a rollback
  to that revision may need it next;
- no deployment of the tenant is queued or running, and none has been made since the current
  revisions were read: a deployment is the only thing that loads or looks up the tenant's
  images, so its own images are never removed under it. This is checked again right before
  each removal; a deployment made after that check needs far longer to reach its images
  than the removal takes, and finds them gone, so it loads them again;
- the engine agrees: it refuses to remove the last name of an image a container, even a
  stopped one, was created from (another name is only untagged; containers run by id).

A removed image is loaded again from its package when a later deployment needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Deployment, Environment, Tenant
from catalog.models.deployment import IN_FLIGHT
from workers.deploy.images import REGISTRY, catalog_image_name, tenant_prefix
from workers.engine import EngineError, InUse, NotFound
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def bundled_images(tenant_id: str, spec: Mapping[str, Any]) -> set[str]:
    """The catalog-owned names of the bundled images a deployment's spec runs."""
    names = set()
    for app in spec.get("apps", []):
        services = (app.get("manifest") or {}).get("services") or {}
        for service in services.values():
            image = service.get("image")
            if isinstance(image, dict) and "bundled" in image:
                names.add(
                    catalog_image_name(
                        tenant_id, app["package"], app["digest"], image["bundled"],
                        image.get("tag"),
                    )
                )  # fmt: skip
    return names


def _newest(session: Session, tenant_id: str) -> datetime | None:
    """When the tenant's newest deployment was made, or None while one is queued or running."""
    busy, newest = session.execute(
        select(
            func.count().filter(Deployment.status.in_(IN_FLIGHT)), func.max(Deployment.created_at)
        )
        .join(Environment, Deployment.environment_id == Environment.id)
        .where(Environment.tenant_id == tenant_id)
    ).one()
    return None if busy else (newest or datetime.min)


def _current_images(session: Session, tenant_id: str) -> set[str]:
    """The images the tenant's environments' current revisions run."""
    specs = session.scalars(
        select(Deployment.spec)
        .join(Environment, Deployment.environment_id == Environment.id)
        .where(
            Environment.tenant_id == tenant_id,
            Deployment.revision == Environment.current_revision,
        )
    )
    return set().union(*(bundled_images(tenant_id, spec) for spec in specs))


class TenantImages:
    """One tenant's images for a pruning pass: what its current revisions run, read once,
    and whether it has deployed since, checked again before each removal."""

    def __init__(self, rt: Runtime, tenant_id: str) -> None:
        self.rt, self.tenant_id = rt, tenant_id
        with rt.sessions() as session:
            self.newest = _newest(session, tenant_id)
            self.needed = _current_images(session, tenant_id) if self.newest else set()

    def settled(self) -> bool:
        """No deployment under way or made since the read: what it read still holds."""
        if self.newest is not None:
            with self.rt.sessions() as session:
                if _newest(session, self.tenant_id) != self.newest:
                    self.newest = None  # for the rest of this pass
        return self.newest is not None


def _prefix(name: str) -> str:
    """`catalog.local/<tenant>/<package>:<tag>` -> `catalog.local/<tenant>/`."""
    return name[: name.find("/", len(REGISTRY) + 1) + 1]


def prune_images(rt: Runtime) -> list[str]:
    """Remove this catalog's bundled image tags that nothing needs; returns those removed."""
    with rt.sessions() as session:
        tenant_of = {tenant_prefix(t): t for t in session.scalars(select(Tenant.id))}
    tenants: dict[str, TenantImages] = {}
    removed = []
    for name in sorted(rt.engine.image_tags(f"{REGISTRY}/*/*")):
        tenant_id = tenant_of.get(_prefix(name))
        if tenant_id is None:
            continue
        if tenant_id not in tenants:
            tenants[tenant_id] = TenantImages(rt, tenant_id)
        tenant = tenants[tenant_id]
        if name in tenant.needed or not tenant.settled():
            continue
        try:
            rt.engine.remove_image(name)
        except (NotFound, InUse):  # InUse: a container was created from it
            continue
        except EngineError as exc:
            log.warning("could not remove bundled image %s: %s", name, exc)
            continue
        log.info("removed unused bundled image %s", name)
        removed.append(name)
    later = sum(1 for tenant in tenants.values() if tenant.newest is None)
    if later:
        log.info("image prune left %d tenant(s) for later: they are deploying", later)
    return removed
