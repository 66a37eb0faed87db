"""Environments and their draft apps: create, show, edit, delete, and check before deploying.

The draft is what users edit; it never touches containers. Every draft edit bumps
`Environment.draft_version`, the environment's ETag (`"<draft_version>"`), under a row lock, so
an `If-Match` check and the edit it guards are atomic. Apps keep their version *constraint*
(exact, range, or None for the newest non-yanked version); it is resolved when the app is
added or changed (to validate parameters and bindings) and again at deploy time.

Secrets: parameters marked `x-secret` in any version of the app's package are shown as
MASK ("********"); MASK sent back at a secret's place keeps the stored value. They are stored
sealed (catalog/secretbox.py), in the draft as in deployment snapshots. Audit events name the
fields changed, never parameter values.

Deleting an environment always answers 202: the status becomes `deleting`, and after the
commit a teardown task is published; the worker tears the containers down and removes
the rows (also for an environment that never ran anything), so there is one path for all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from catalog.auth import Principal, require_role
from catalog.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from catalog.models import App, Environment, EnvironmentStatus
from catalog.queue import TEARDOWN_TASK, Publisher, commit_then_publish
from catalog.secretbox import box_of
from catalog.services import audit
from catalog.services.environment_checks import (
    check_deployable,
    checked_parameters,
    draft_spec,
    package_in_use,
    resolve_version,
    upgraded_parameters,
    usable_package,
)
from catalog.services.environment_rules import (
    DraftProblem,
    app_status,
    binders_of,
    cycle_problem,
    incoming_problems,
    outgoing_problems,
)
from catalog.services.environment_views import (
    AppView,
    EnvironmentView,
    PackageIndex,
    describe,
    describe_many,
    etag_of,
)
from catalog.services.hosts import place
from catalog.services.lookup import commit_or_conflict, find_owned, name_taken
from catalog.services.pagination import page_by_name
from catalog.services.quotas import DEFAULT_QUOTAS, Quotas, check_environments

# The deployments service and the workers take check_deployable, draft_spec, app_status and
# package_in_use from here too.
__all__ = [
    "AppView",
    "EnvironmentView",
    "add_app",
    "app_status",
    "check_deployable",
    "check_precondition",
    "create_environment",
    "delete_app",
    "delete_environment",
    "describe",
    "draft_spec",
    "get_app",
    "get_environment",
    "list_environments",
    "package_in_use",
    "show_environment",
    "update_app",
    "update_environment",
]

# -- finding ---------------------------------------------------------------------------------


def get_environment(
    session: Session, principal: Principal, ref: str, *, lock: bool = False
) -> Environment:
    """The caller's environment named (or with the id) `ref`; 404 for another tenant's."""
    return find_owned(session, principal, Environment, "environment", ref, lock=lock)


def _editable(
    session: Session, principal: Principal, ref: str, if_match: Collection[str] | None
) -> Environment:
    """The environment, locked for a draft edit by a deployer, its ETag as expected."""
    env = get_environment(session, principal, ref, lock=True)
    require_role(principal, "deployer")
    if env.status == EnvironmentStatus.DELETING:
        raise Conflict(f"environment {env.name!r} is being deleted")
    check_precondition(env, if_match)
    return env


def check_precondition(env: Environment, if_match: Collection[str] | None) -> None:
    """412 unless `If-Match` (its strong tags, unquoted; "*" for any) names the current ETag."""
    if if_match is None or "*" in if_match or str(env.draft_version) in if_match:
        return
    raise PreconditionFailed(
        f"environment {env.name!r} has changed; its current ETag is {etag_of(env)}",
        headers={"ETag": etag_of(env)},
    )


def _app(env: Environment, name: str) -> App:
    for app in env.apps:
        if app.name == name:
            return app
    raise NotFound(f"no app {name!r} in environment {env.name!r}")


# -- environments ----------------------------------------------------------------------------


def create_environment(
    session: Session,
    principal: Principal,
    name: str,
    description: str,
    settings: dict,
    *,
    apps: Iterable[App] = (),
    template: str | None = None,
    host: str | None = None,
    quotas: Quotas = DEFAULT_QUOTAS,
) -> EnvironmentView:
    """A new environment in the caller's tenant (deployer): empty, or with the draft `apps`
    checked already (made from `template`), on the Docker host named or chosen by `place`;
    within the tenant's quota of environments."""
    require_role(principal, "deployer")
    taken = f"environment {name!r} exists already"
    if name_taken(session, Environment, principal.tenant_id, name):
        raise Conflict(taken)
    check_environments(session, principal.tenant_id, quotas)
    env = Environment(
        tenant_id=principal.tenant_id,
        name=name,
        description=description,
        settings=settings,
        status=EnvironmentStatus.NEW,
        draft_version=1,
        apps=list(apps),
        host=place(session, host),
    )
    session.add(env)
    session.flush()
    detail = {"name": name, "host": env.host.name if env.host else None}
    if template is not None:
        detail["template"] = template
    audit.record(session, principal, "environment.create", "environment", env.id, detail=detail)
    commit_or_conflict(session, taken)
    return describe(session, env)


def list_environments(
    session: Session, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[EnvironmentView], str | None]:
    """Keyset-paginated by name."""
    query = select(Environment).options(selectinload(Environment.apps))
    if not principal.is_admin:
        query = query.where(Environment.tenant_id == principal.tenant_id)
    page, following = page_by_name(session, query, Environment, limit, cursor)
    return describe_many(session, page), following


def show_environment(session: Session, principal: Principal, ref: str) -> EnvironmentView:
    return describe(session, get_environment(session, principal, ref))


def update_environment(
    session: Session,
    principal: Principal,
    ref: str,
    changes: dict[str, Any],
    if_match: Collection[str] | None = None,
) -> EnvironmentView:
    """Rename, describe or change settings; any change bumps the ETag."""
    env = _editable(session, principal, ref, if_match)
    changed = sorted(f for f, value in changes.items() if getattr(env, f) != value)
    new_name = changes.get("name", env.name)
    taken = f"environment {new_name!r} exists already"
    if "name" in changed and name_taken(session, Environment, env.tenant_id, new_name):
        raise Conflict(taken)
    for field in changed:
        setattr(env, field, changes[field])
    if changed:
        env.draft_version += 1
    audit.record(
        session,
        principal,
        "environment.update",
        "environment",
        env.id,
        tenant_id=env.tenant_id,
        detail={"name": env.name, "fields": changed},
    )
    commit_or_conflict(session, taken)
    return describe(session, env)


def delete_environment(
    session: Session,
    principal: Principal,
    publisher: Publisher,
    ref: str,
    if_match: Collection[str] | None = None,
) -> None:
    """Mark the environment `deleting` and ask a worker to tear it down (again, if asked again).

    The message goes out after the commit; when the broker is away, the resync sends it.
    """
    env = get_environment(session, principal, ref, lock=True)
    require_role(principal, "deployer")
    check_precondition(env, if_match)
    env.status, env.status_detail = EnvironmentStatus.DELETING, ""
    audit.record(
        session,
        principal,
        "environment.delete",
        "environment",
        env.id,
        tenant_id=env.tenant_id,
        detail={"name": env.name},
    )
    commit_then_publish(session, publisher, TEARDOWN_TASK, env.id, host=env.host_name)


# -- apps ------------------------------------------------------------------------------------


def get_app(session: Session, principal: Principal, ref: str, name: str) -> AppView:
    env = get_environment(session, principal, ref)
    _app(env, name)
    return describe(session, env).app(name)


def _binding_errors(problems: Iterable[DraftProblem | None]) -> list[dict[str, str]]:
    return [{"path": p.path, "message": p.message} for p in problems if p is not None]


def _save_draft(
    session: Session,
    principal: Principal,
    env: Environment,
    action: str,
    app: App,
    detail: dict[str, Any],
) -> AppView:
    env.draft_version += 1
    audit.record(
        session,
        principal,
        action,
        "app",
        f"{env.id}/{app.name}",
        tenant_id=env.tenant_id,
        detail={"environment": env.name, "app": app.name, **detail},
    )
    commit_or_conflict(session, f"app {app.name!r} exists already in environment {env.name!r}")
    session.refresh(env, ["apps"])
    return describe(session, env).app(app.name)


def add_app(
    session: Session,
    principal: Principal,
    ref: str,
    body: dict[str, Any],
    if_match: Collection[str] | None = None,
) -> AppView:
    """Add an app to the draft: version resolved now, parameters and bindings validated."""
    env = _editable(session, principal, ref, if_match)
    name = body["name"]
    if any(a.name == name for a in env.apps):
        raise Conflict(f"app {name!r} exists already in environment {env.name!r}")
    usable_package(session, env, body["package"])
    index = PackageIndex(session, {body["package"], *(a.package for a in env.apps)})
    resolved = resolve_version(index, body["package"], body["version"])
    parameters, errors = checked_parameters(
        resolved, body["parameters"], {}, index.secrets(body["package"]), box_of(session)
    )
    app = App(
        name=name,
        package=body["package"],
        version=body["version"],
        parameters=parameters,
        bindings=body["bindings"],
    )
    drafts = {a.name: index.draft_app(a) for a in env.apps}
    drafts[name] = index.draft_app(app, resolved=resolved)
    errors += _binding_errors(
        [*outgoing_problems(drafts[name], drafts), cycle_problem(drafts[name], drafts)]
    )
    if errors:
        raise ValidationFailed(f"app {name!r} is not valid", errors=errors)
    env.apps.append(app)
    detail = {"package": app.package, "version": resolved.version, "bindings": app.bindings}
    return _save_draft(session, principal, env, "app.create", app, detail)


def update_app(
    session: Session,
    principal: Principal,
    ref: str,
    name: str,
    changes: dict[str, Any],
    if_match: Collection[str] | None = None,
) -> AppView:
    """Change an app's version, parameters (the whole object) or bindings.

    A version change without `parameters` moves the stored ones by the new version's
    migrations (the answer's `migrated` says what they did); what its schema then refuses is
    listed in the 400, never dropped. Parameters sent are the new version's as they are.
    """
    env = _editable(session, principal, ref, if_match)
    app = _app(env, name)
    usable_package(session, env, app.package)
    index = PackageIndex(session, {a.package for a in env.apps})
    version = changes.get("version", app.version)
    resolved = resolve_version(index, app.package, version)
    secrets, box = index.secrets(app.package), box_of(session)
    migrated: list[str] = []
    if "parameters" in changes:
        parameters, errors = checked_parameters(
            resolved, changes["parameters"], app.parameters, secrets, box
        )
    else:
        was = index.resolve(app.package, app.version)
        parameters, migrated, errors = upgraded_parameters(
            was, resolved, app.parameters, secrets, box
        )
    bindings = changes.get("bindings", app.bindings)
    drafts = {a.name: index.draft_app(a) for a in env.apps}
    drafts[name] = index.draft_app(app, resolved=resolved, bindings=bindings)
    errors += _binding_errors(
        [
            *outgoing_problems(drafts[name], drafts),
            *incoming_problems(drafts[name], drafts),
            cycle_problem(drafts[name], drafts),
        ]
    )
    if errors:
        raise ValidationFailed(f"app {name!r} is not valid", errors=errors)
    app.version, app.parameters, app.bindings = version, parameters, dict(bindings)
    detail: dict[str, Any] = {"version": resolved.version, "fields": sorted(changes)}
    if migrated:
        detail["migrated"] = migrated  # names only, like the answer
    view = _save_draft(session, principal, env, "app.update", app, detail)
    return replace(view, migrated=tuple(migrated))


def delete_app(
    session: Session,
    principal: Principal,
    ref: str,
    name: str,
    if_match: Collection[str] | None = None,
) -> str:
    """Remove an app from the draft; refused while another app binds to it. Returns the ETag."""
    env = _editable(session, principal, ref, if_match)
    app = _app(env, name)
    binders = binders_of(name, env.apps)
    if binders:
        named = ", ".join(f"{b!r} (slot {s!r})" for b, s in binders)
        raise Conflict(f"app {name!r} is bound by {named}; change those bindings first")
    env.apps.remove(app)
    env.draft_version += 1
    audit.record(
        session,
        principal,
        "app.delete",
        "app",
        f"{env.id}/{name}",
        tenant_id=env.tenant_id,
        detail={"environment": env.name, "app": name},
    )
    session.commit()
    return etag_of(env)
