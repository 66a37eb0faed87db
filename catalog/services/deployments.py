"""Deployments: snapshot the draft with every version resolved, publish after commit, cancel.

A deployment is revision N of an environment. Its snapshot is immutable; the
worker brings the environment to it. Rolling back to K deploys K's snapshot
as a new revision.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.auth import Principal, require_role
from catalog.config import Settings
from catalog.errors import (
    Conflict,
    InsufficientStorage,
    NotFound,
    TooManyRequests,
    ValidationFailed,
)
from catalog.models import (
    IN_FLIGHT,
    ContainerRecord,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    Environment,
    EnvironmentStatus,
)
from catalog.models.common import utcnow
from catalog.models.environment import placed_on
from catalog.queue import DEPLOY_TASK, Publisher, commit_then_publish
from catalog.services import audit
from catalog.services.environment_checks import snapshot_problems
from catalog.services.environments import draft_spec, get_environment
from catalog.services.pagination import decode_cursor, encode_cursor
from catalog.services.quotas import DEFAULT_QUOTAS, Quotas, check_published_ports
from catalog.snapshot import AppSnapshot, DeploymentSnapshot
from packages.versions import parse_range, parse_version

MiB = 1024 * 1024


@dataclass(frozen=True)
class DeployLimits:
    """Operator bounds on deployments: concurrency per tenant and the host's log budget."""

    max_active: int = 20
    log_budget: int = 8 * 1024 * MiB
    log_share: int = 10 * MiB

    @classmethod
    def from_settings(cls, settings: Settings) -> DeployLimits:
        return cls(settings.max_active_deploys, settings.log_budget_bytes, settings.log_share_bytes)


def _problem(path: str, message: str) -> dict[str, str]:
    return {"path": path, "message": message}


def _requires_problems(apps: list[AppSnapshot]) -> list[dict[str, str]]:
    """Each app's `requires` must be met by another app of the environment."""
    present: dict[str, list[str]] = {}
    for app in apps:
        present.setdefault(app["package"], []).append(app["version"])
    problems = []
    for app in apps:
        for package, wanted in (app["manifest"].get("requires") or {}).items():
            spec = parse_range(wanted)
            if not any(spec.match(parse_version(v)) for v in present.get(package, [])):
                problems.append(
                    _problem(f"apps.{app['name']}.requires", f"needs {package} {wanted}")
                )
    return problems


def snapshot(session: Session, environment: Environment) -> DeploymentSnapshot:
    """The draft with every version resolved; ValidationFailed lists every problem."""
    if not environment.apps:
        raise ValidationFailed(
            "the environment cannot be deployed",
            errors=[_problem("apps", "the environment has no apps to deploy")],
        )
    spec = draft_spec(session, environment)
    problems = _requires_problems(spec["apps"])
    if problems:
        raise ValidationFailed("the environment cannot be deployed", errors=problems)
    spec["apps"].sort(key=lambda a: a["name"])
    return spec


def redeployable(
    session: Session, environment: Environment, revision: int, principal: Principal
) -> DeploymentSnapshot:
    """Revision `revision`'s snapshot, once its packages are checked as a draft's would be."""
    spec = DeploymentSnapshot(**get_deployment(session, principal, environment.name, revision).spec)
    problems = snapshot_problems(session, environment, spec)
    if problems:
        raise ValidationFailed(
            f"revision {revision} of {environment.name!r} cannot be deployed again",
            errors=problems,
        )
    return spec


def _check_capacity(session: Session, principal: Principal, limit: int) -> None:
    active = session.scalars(
        select(func.count())
        .select_from(Deployment)
        .join(Environment, Environment.id == Deployment.environment_id)
        .where(Environment.tenant_id == principal.tenant_id, Deployment.status.in_(IN_FLIGHT))
    ).one()
    if active >= limit:
        raise TooManyRequests(
            f"{active} deployments of this tenant are queued or running (at most {limit})",
            headers={"Retry-After": "5"},
        )


DEFAULT_LIMITS = DeployLimits()


def _check_log_budget(
    session: Session, environment: Environment, spec: DeploymentSnapshot, limits: DeployLimits
) -> None:
    """Refuse a deployment whose containers' log shares would not fit the host's budget."""
    used = session.scalars(
        select(func.coalesce(func.sum(ContainerRecord.log_bytes), 0))
        .join(Environment, Environment.id == ContainerRecord.environment_id)
        .where(ContainerRecord.environment_id != environment.id, placed_on(environment.host_id))
    ).one()
    containers = sum(len(app["manifest"].get("services", {})) for app in spec["apps"])
    needed = containers * limits.log_share
    if used + needed > limits.log_budget:
        free = max(limits.log_budget - used, 0)
        raise InsufficientStorage(
            f"the log budget of the engine host is exhausted: this deployment needs "
            f"{needed // MiB} MiB of log space for {containers} container(s), "
            f"{free // MiB} MiB of {limits.log_budget // MiB} MiB is free; "
            "running apps are untouched"
        )


def create_deployment(
    session: Session,
    principal: Principal,
    publisher: Publisher,
    env_name: str,
    *,
    from_revision: int | None = None,
    limits: DeployLimits = DEFAULT_LIMITS,
    quotas: Quotas = DEFAULT_QUOTAS,
) -> Deployment:
    require_role(principal, "deployer")
    environment = get_environment(session, principal, env_name)
    if environment.status in (EnvironmentStatus.DELETING, EnvironmentStatus.DELETE_FAILED):
        raise Conflict(f"environment {env_name!r} is being deleted")
    _check_capacity(session, principal, limits.max_active)
    if from_revision is None:
        spec = snapshot(session, environment)
    else:
        spec = redeployable(session, environment, from_revision, principal)
    spec["log_share"] = limits.log_share
    _check_log_budget(session, environment, spec, limits)
    check_published_ports(session, environment, spec["apps"], quotas)
    environment.last_revision += 1
    deployment = Deployment(
        environment_id=environment.id,
        revision=environment.last_revision,
        spec=spec,
        from_revision=from_revision,
        created_by=principal.token_id,
        # In flight from the commit on: the resync leaves it alone until it is stale, so it
        # does not publish it a second time while this request is still publishing it.
        published_at=utcnow(),
    )
    session.add(deployment)
    environment.status = EnvironmentStatus.DEPLOYING
    source = f" from revision {from_revision}" if from_revision else ""
    session.add(
        DeploymentEvent(
            environment_id=environment.id,
            revision=deployment.revision,
            message=f"revision {deployment.revision} queued{source}",
        )
    )
    audit.record(
        session, principal, "deployment.create", "deployment",
        f"{environment.id}@{deployment.revision}", tenant_id=environment.tenant_id,
    )  # fmt: skip
    commit_then_publish(
        session, publisher, DEPLOY_TASK, deployment.environment_id, deployment.revision,
        host=environment.host_name,
        sent=lambda: _published(deployment),
        unsent=lambda: _left_to_the_resync(session, deployment),
    )  # fmt: skip
    return deployment


def _published(deployment: Deployment) -> None:
    """The broker confirmed it: the resync counts its staleness from now."""
    deployment.published_at = utcnow()


def _left_to_the_resync(session: Session, deployment: Deployment) -> None:
    """Never published: the next resync sends it; its events say why it waits."""
    deployment.published_at = None
    session.add(
        DeploymentEvent(
            environment_id=deployment.environment_id,
            revision=deployment.revision,
            level="warning",
            message="the message broker is unreachable; the deployment waits for the resync",
        )
    )


def list_deployments(
    session: Session, principal: Principal, env_name: str, limit: int, cursor: str | None
) -> tuple[list[Deployment], str | None]:
    environment = get_environment(session, principal, env_name)
    query = select(Deployment).where(Deployment.environment_id == environment.id)
    if cursor:
        (before,) = decode_cursor(cursor, 1)
        if not isinstance(before, int):
            raise ValidationFailed("invalid cursor", errors=[_problem("cursor", "invalid cursor")])
        query = query.where(Deployment.revision < before)
    rows = list(session.scalars(query.order_by(Deployment.revision.desc()).limit(limit + 1)))
    page = rows[:limit]
    more = len(rows) > limit
    return page, encode_cursor([page[-1].revision]) if more and page else None


def get_deployment(
    session: Session, principal: Principal, env_name: str, revision: int
) -> Deployment:
    environment = get_environment(session, principal, env_name)
    deployment = session.scalar(
        select(Deployment).where(
            Deployment.environment_id == environment.id, Deployment.revision == revision
        )
    )
    if deployment is None:
        raise NotFound(f"environment {env_name!r} has no revision {revision}")
    return deployment


def cancel_deployment(
    session: Session, principal: Principal, env_name: str, revision: int
) -> Deployment:
    require_role(principal, "deployer")
    deployment = get_deployment(session, principal, env_name, revision)
    if deployment.status not in IN_FLIGHT:
        raise Conflict(
            f"revision {revision} is {deployment.status}; "
            "only a queued or running one can be cancelled"
        )
    environment = session.get_one(Environment, deployment.environment_id)
    if deployment.status == DeploymentStatus.QUEUED:
        deployment.status, deployment.finished_at = DeploymentStatus.CANCELLED, utcnow()
        deployment.error = "cancelled before it started"
        environment.status = (
            EnvironmentStatus.READY if environment.current_revision else EnvironmentStatus.NEW
        )
    deployment.cancel_requested = True
    session.add(
        DeploymentEvent(
            environment_id=environment.id, revision=revision, level="warning",
            message=f"cancel of revision {revision} requested",
        )
    )  # fmt: skip
    audit.record(
        session, principal, "deployment.cancel", "deployment", f"{environment.id}@{revision}",
        tenant_id=environment.tenant_id,
    )  # fmt: skip
    session.commit()
    return deployment


def list_events(
    session: Session,
    principal: Principal,
    env_name: str,
    *,
    after: int = 0,
    revision: int | None = None,
    limit: int = 200,
) -> list[DeploymentEvent]:
    environment = get_environment(session, principal, env_name)
    return events_after(session, environment.id, after=after, revision=revision, limit=limit)


def get_environment_id(session: Session, principal: Principal, env_name: str) -> str:
    return get_environment(session, principal, env_name).id


def revision_finished(session: Session, env_id: str, revision: int) -> tuple[bool, str | None]:
    """Whether revision N has finished (or does not exist), and its status (None if missing)."""
    status = session.scalar(
        select(Deployment.status).where(
            Deployment.environment_id == env_id, Deployment.revision == revision
        )
    )
    return status not in IN_FLIGHT, status


def events_after(
    session: Session, env_id: str, *, after: int, revision: int | None, limit: int
) -> list[DeploymentEvent]:
    query = select(DeploymentEvent).where(
        DeploymentEvent.environment_id == env_id, DeploymentEvent.id > after
    )
    if revision is not None:
        query = query.where(DeploymentEvent.revision == revision)
    return list(session.scalars(query.order_by(DeploymentEvent.id).limit(limit)))
