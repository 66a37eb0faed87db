"""The plan before a deploy: what deploying an environment's draft now would change.

It runs the workers' own preparation and planner (workers/deploy/preview.py) in the API
process, against the engine of the environment's host, and writes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.auth import Principal, require_role
from catalog.config import Settings
from catalog.errors import Conflict, ServiceUnavailable, ValidationFailed
from catalog.models import Deployment, EnvironmentStatus, HostPort
from catalog.secretbox import SecretBox, box_of, open_all
from catalog.services.blobs import BlobStore
from catalog.services.deployments import snapshot
from catalog.services.environments import get_environment
from packages.archive import PackageArchive, open_archive
from packages.imageref import RegistryPolicy
from packages.render_process import RenderLimits
from workers.deploy.prepare import PrepareError
from workers.deploy.preview import Preview, PreviewInputs, preview
from workers.engine import Engine, EngineError


def plan_draft(
    session: Session,
    principal: Principal,
    env_name: str,
    *,
    engine: Callable[[Any], Engine],
    blobs: BlobStore,
    settings: Settings,
) -> Preview:
    """What `deploy` would do now; ValidationFailed for what would make it fail.

    `engine(host)` is the engine of the environment's host (None: the default engine).
    """
    require_role(principal, "deployer")
    environment = get_environment(session, principal, env_name)
    if environment.status in (EnvironmentStatus.DELETING, EnvironmentStatus.DELETE_FAILED):
        raise Conflict(f"environment {env_name!r} is being deleted")
    spec = snapshot(session, environment)
    running = None
    if environment.current_revision is not None:
        running = session.scalar(
            select(Deployment.spec).where(
                Deployment.environment_id == environment.id,
                Deployment.revision == environment.current_revision,
            )
        )
    host_ports = {
        (p.app, p.service, p.container_port, p.protocol): p.port
        for p in session.scalars(select(HostPort).where(HostPort.environment_id == environment.id))
    }
    box = box_of(session)
    with _archives(blobs) as read_member:
        inputs = PreviewInputs(
            engine(environment.host),
            read_member,
            RegistryPolicy.from_setting(settings.registries),
            RenderLimits.from_settings(settings),
        )
        try:
            return preview(
                inputs,
                env_id=environment.id,
                env_name=environment.name,
                tenant_id=environment.tenant_id,
                revision=environment.last_revision + 1,
                spec=_opened(spec, box),
                running=_opened(running, box) if running else None,
                host_ports=host_ports,
            )
        except PrepareError as exc:
            raise ValidationFailed(
                "the environment cannot be deployed",
                errors=[{"path": "apps", "message": str(exc)}],
            ) from None
        except EngineError as exc:
            raise ServiceUnavailable(
                f"the engine of the environment does not answer: {exc}"
            ) from None


def _opened(spec: Mapping[str, Any], box: SecretBox) -> dict[str, Any]:
    return {**spec, "apps": open_all(spec["apps"], box)}


@contextlib.contextmanager
def _archives(blobs: BlobStore) -> Iterator[Callable[[str, str], bytes]]:
    """read_member(digest, member), each archive opened (and checked) once."""
    opened: dict[str, PackageArchive] = {}

    def read_member(digest: str, member: str) -> bytes:
        if digest not in opened:
            opened[digest] = open_archive(blobs.path_for(digest))
        return opened[digest].read(member)

    try:
        yield read_member
    finally:
        for archive in opened.values():
            archive.close()
