"""Removing bundled images nothing needs any more (a periodic task, PRUNE_IMAGES_SECONDS).

Every package version deployed with a bundled image leaves a `catalog.local/<tenant>/...` tag
on the engine (workers/images.py). Upgrades, deleted environments and deleted versions would
otherwise keep those images, and their disk, for ever. A tag is removed when all of these hold:

- its tenant is one of this catalog's (another catalog on the same engine keeps its own);
- no queued or running deployment and no environment's current revision names it: a deploy,
  a rollback to the current revision, the tracker's repair or an action may need it next;
- no container uses it: the engine refuses to remove an image a container, even a stopped
  one, was created from, and that refusal is left standing;
- no deployment is queued or running at the moment of removal: one that started after the
  list of needed images was read could be about to run an image it found loaded.

A removed image is loaded again from its package when a later deployment needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from docker.errors import APIError, ImageNotFound
from sqlalchemy import exists, or_, select

from catalog.models import Deployment, Environment, Tenant
from workers.deploy import Runtime
from workers.images import REGISTRY, catalog_image_name, tenant_prefix

log = logging.getLogger(__name__)

IN_FLIGHT = ("queued", "running")


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


def _needed(rt: Runtime) -> tuple[set[str], set[str]]:
    """(tenant ids of this catalog, images the current revisions and in-flight deployments run)."""
    with rt.sessions() as session:
        tenants = set(session.scalars(select(Tenant.id)))
        rows = session.execute(
            select(Environment.tenant_id, Deployment.spec)
            .join(Environment, Deployment.environment_id == Environment.id)
            .where(
                or_(
                    Deployment.revision == Environment.current_revision,
                    Deployment.status.in_(IN_FLIGHT),
                )
            )
        )
        needed = set().union(*(bundled_images(tenant, spec) for tenant, spec in rows))
    return tenants, needed


def _deploying(rt: Runtime) -> bool:
    with rt.sessions() as session:
        return bool(session.scalar(select(exists().where(Deployment.status.in_(IN_FLIGHT)))))


def _prefix(name: str) -> str:
    """`catalog.local/<tenant>/<package>:<tag>` -> `catalog.local/<tenant>/`."""
    return name[: name.find("/", len(REGISTRY) + 1) + 1]


def _catalog_tags(client) -> Iterable[str]:
    for image in client.api.images(filters={"reference": f"{REGISTRY}/*/*"}):
        yield from image.get("RepoTags") or ()


def prune_images(rt: Runtime) -> list[str]:
    """Remove this catalog's bundled image tags that nothing needs; returns those removed."""
    tenants, needed = _needed(rt)
    prefixes = {tenant_prefix(tenant) for tenant in tenants}
    client = rt.driver.client
    removed = []
    for name in sorted(_catalog_tags(client)):
        if _prefix(name) not in prefixes or name in needed:
            continue
        if _deploying(rt):
            log.info("image prune stopped: a deployment is queued or running")
            break
        try:
            client.api.remove_image(name, noprune=False)
        except ImageNotFound:
            continue
        except APIError as exc:
            if exc.status_code != 409:  # 409: a container uses it
                raise
            continue
        log.info("removed unused bundled image %s", name)
        removed.append(name)
    return removed
