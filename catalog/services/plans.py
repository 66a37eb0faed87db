"""The plan before a deploy: what deploying an environment's draft now would change.

It runs the workers' own preparation and planner (workers/deploy/preview.py) in the API
process, against the engine of the environment's host, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.auth import Principal, require_role
from catalog.config import Settings
from catalog.errors import Conflict, ServiceUnavailable, ValidationFailed
from catalog.models import Deployment, EnvironmentStatus, HostPort
from catalog.secretbox import box_of, opened
from catalog.services.blobs import BlobStore
from catalog.services.deployments import snapshot
from catalog.services.environments import get_environment
from packages.imageref import RegistryPolicy
from packages.render_process import RenderLimits
from workers.deploy.inputs import Archives
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
    archives = Archives(blobs.path_for)
    inputs = PreviewInputs(
        engine(environment.host),
        archives.read_member,
        RegistryPolicy.from_setting(settings.registries),
        RenderLimits.from_settings(settings),
    )
    try:
        archives.verify(spec["apps"])
        return preview(
            inputs,
            env_id=environment.id,
            env_name=environment.name,
            tenant_id=environment.tenant_id,
            revision=environment.last_revision + 1,
            spec=opened(spec, box),
            running=opened(running, box) if running else None,
            host_ports=host_ports,
        )
    except PrepareError as exc:
        raise ValidationFailed(
            "the environment cannot be deployed",
            errors=[{"path": "apps", "message": str(exc)}],
        ) from None
    except EngineError as exc:
        raise ServiceUnavailable(f"the engine of the environment does not answer: {exc}") from None
    finally:
        archives.close()
