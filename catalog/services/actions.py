"""Actions on an app: built-in restart/stop/start, or one the package defines; run by a worker."""

from __future__ import annotations

from sqlalchemy.orm import Session

from catalog.auth import Principal, require_role
from catalog.errors import Conflict, NotFound, ValidationFailed
from catalog.models import Task, TaskStatus
from catalog.models.deployment import deployed_app
from catalog.queue import ACTION_TASK, Publisher, commit_then_publish
from catalog.secretbox import box_of, seal_at
from catalog.services import audit
from catalog.services.environment_rules import secret_paths
from catalog.services.environments import get_environment
from packages.errors import ManifestValidationError
from packages.manifest import validate_parameters

BUILT_IN = ("restart", "stop", "start")


def _deployed_app(session: Session, environment, app_name: str) -> dict:
    """The app as the current revision runs it."""
    app = deployed_app(session, environment.id, environment.current_revision, app_name)
    if app is None:
        raise Conflict(f"app {app_name!r} is not deployed in environment {environment.name!r}")
    return app


def run_action(
    session: Session,
    principal: Principal,
    publisher: Publisher,
    env_name: str,
    app_name: str,
    action: str,
    *,
    service: str | None = None,
    parameters: dict | None = None,
) -> Task:
    require_role(principal, "deployer")
    environment = get_environment(session, principal, env_name)
    if not any(a.name == app_name for a in environment.apps):
        raise NotFound(f"environment {env_name!r} has no app {app_name!r}")
    app = _deployed_app(session, environment, app_name)
    manifest = app["manifest"]
    services = manifest.get("services", {})
    if service is not None and service not in services:
        raise ValidationFailed(
            "unknown service",
            errors=[{"path": "service", "message": f"app {app_name!r} has no service {service!r}"}],
        )
    if action in BUILT_IN:
        values = {}
        if parameters:
            raise ValidationFailed(
                "built-in actions take no parameters",
                errors=[{"path": "parameters", "message": f"{action} takes no parameters"}],
            )
    else:
        defined = (manifest.get("actions") or {}).get(action)
        if defined is None:
            known = ", ".join([*BUILT_IN, *sorted(manifest.get("actions") or {})])
            raise NotFound(f"app {app_name!r} has no action {action!r} (it has: {known})")
        service = defined["service"]
        try:
            schema = defined.get("parameters") or {}
            values = validate_parameters(schema, parameters or {})
            values = seal_at(values, secret_paths(values, [schema]), box_of(session))
        except ManifestValidationError as exc:
            raise ValidationFailed(
                "invalid action parameters",
                errors=[{"path": p.path, "message": p.message} for p in exc.problems],
            ) from None
    task = Task(
        environment_id=environment.id,
        app=app_name,
        service=service,
        action=action,
        parameters=values,
        created_by=principal.token_id,
    )
    session.add(task)
    session.flush()
    audit.record(
        session, principal, "action.run", "task", task.id, tenant_id=environment.tenant_id,
        detail={"app": app_name, "action": action, "service": service},
    )  # fmt: skip
    commit_then_publish(
        session, publisher, ACTION_TASK, task.id,
        host=environment.host_name, unsent=lambda: _unsent(task),
    )  # fmt: skip
    return task


def _unsent(task: Task) -> None:
    """Nothing sends an action again: it fails, and the caller may run it anew."""
    task.status, task.error = TaskStatus.FAILED, "the message broker is unreachable; try again"


def get_task(session: Session, principal: Principal, env_name: str, task_id: str) -> Task:
    environment = get_environment(session, principal, env_name)
    task = session.get(Task, task_id)
    if task is None or task.environment_id != environment.id:
        raise NotFound(f"environment {env_name!r} has no task {task_id!r}")
    return task
