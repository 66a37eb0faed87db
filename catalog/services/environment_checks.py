"""Checks of an environment's draft against the catalog: packages, versions, parameters and
bindings when an app is edited and before a deploy, and packages an environment still uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, or_, select
from sqlalchemy.orm import Session

from catalog.auth import Principal
from catalog.errors import NotFound, ValidationFailed
from catalog.models import IN_FLIGHT, App, Deployment, Environment, Package, PackageVersion
from catalog.secretbox import SecretBox, box_of, open_all, seal_at
from catalog.services import packages as package_service
from catalog.services.environment_rules import (
    DraftApp,
    cycle_problems,
    missing_required,
    outgoing_problems,
    restore_secrets,
    secret_paths,
)
from catalog.services.environment_views import PackageIndex
from catalog.snapshot import AppSnapshot, DeploymentSnapshot
from packages.errors import ManifestValidationError
from packages.manifest import format_path, validate_parameters
from packages.migrations import migrate, parameter_path, sealed_locations

# -- one app ---------------------------------------------------------------------------------


def usable_package(session: Session, env: Environment, name: str) -> Package:
    """A package the environment's tenant may deploy: visible to it, enabled, an application."""
    owner = Principal(token_id="", tenant_id=env.tenant_id, tenant_name="", role="deployer")
    try:
        package = package_service.get_package(session, owner, name)
    except NotFound:
        raise invalid("package", f"no package {name!r}") from None
    if not package.enabled:
        raise invalid("package", f"package {name!r} is disabled")
    if package.type != "application":
        raise invalid("package", f"package {name!r} is a library; only applications run")
    return package


def invalid(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"path": path, "message": message}])


def resolve_version(index: PackageIndex, package: str, constraint: str | None) -> PackageVersion:
    resolved = index.resolve(package, constraint)
    if resolved is None:
        wanted = f"matches {constraint!r}" if constraint else "is published and not yanked"
        raise invalid("version", f"no version of {package} {wanted}")
    return resolved


def checked_parameters(
    resolved: PackageVersion, values: dict, stored: dict, secrets: tuple[dict, ...], box: SecretBox
) -> tuple[dict, list[dict[str, str]]]:
    """Parameters with kept secrets restored, defaults applied and secrets sealed for storing,
    and every problem.

    `values` and `stored` may hold sealed secrets (a stored draft, a template's apps);
    `secrets`: the parameter schemas whose secrets are masked, kept and sealed.
    """
    values = open_all(values, box)
    schemas = (*secrets, resolved.manifest.get("parameters"))
    values, unkept = restore_secrets(values, open_all(stored, box), secret_paths(values, schemas))
    problems = [
        {
            "path": format_path(("parameters", *path)),
            "message": "is masked, but there is no stored secret to keep",
        }
        for path in unkept
    ]
    if problems:
        return values, problems
    try:
        filled = validate_parameters(resolved.manifest.get("parameters") or {}, values)
    except ManifestValidationError as error:
        return values, [{"path": p.path, "message": p.message} for p in error.problems]
    return seal_at(filled, secret_paths(filled, schemas), box), []


def upgraded_parameters(
    was: PackageVersion | None,
    resolved: PackageVersion,
    stored: dict,
    secrets: tuple[dict, ...],
    box: SecretBox,
) -> tuple[dict, list[str], list[dict[str, str]]]:
    """`checked_parameters` of an app's stored parameters when it moves from version `was`
    (None: unknown) to `resolved`, after the migrations `resolved` declares from `was`
    (packages/migrations.py); also the lines saying what they did.

    Every parameter the new schema refuses is an error, never dropped. A sealed secret stays
    sealed where a rename moved it, even to a place no version marks `x-secret`.
    """
    if was is None or was.version == resolved.version:
        parameters, errors = checked_parameters(resolved, stored, stored, secrets, box)
        return parameters, [], errors
    manifest = resolved.manifest
    moved = migrate(
        stored, was.version, manifest.get("migrations") or [], manifest.get("parameters"),
        to_version=resolved.version, reveal=lambda values: open_all(values, box),
    )  # fmt: skip
    if moved.refused:
        errors = [{"path": parameter_path(n), "message": m} for n, m in moved.refused]
        return stored, [], errors
    parameters, errors = checked_parameters(
        resolved, moved.parameters, moved.parameters, secrets, box
    )
    sealed = seal_at(parameters, set(sealed_locations(moved.parameters)), box)
    return sealed, moved.applied, errors


# -- before a deploy -------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedApp:
    """A draft app ready for a deployment snapshot."""

    name: str
    package: str
    version: PackageVersion
    parameters: dict
    bindings: dict

    @property
    def spec(self) -> AppSnapshot:
        return {
            "name": self.name,
            "package": self.package,
            "version": self.version.version,
            "digest": self.version.digest,
            "parameters": self.parameters,
            "bindings": self.bindings,
            "manifest": self.version.manifest,
        }


def _resolve_draft(
    session: Session,
    env: Environment,
    kept: Mapping[str, dict] | None = None,
    index: PackageIndex | None = None,
) -> tuple[list[ResolvedApp], list[dict]]:
    """The draft's apps resolved, and every problem.

    `kept` is for apps given now rather than stored: by app, the stored parameters whose
    secrets a MASK keeps (an app without any: a MASK is refused). None: the apps are the
    environment's stored draft. `index`: the apps' packages, when the caller has them.
    """
    index = index or PackageIndex(session, {a.package for a in env.apps})
    problems: list[dict[str, str]] = []
    resolved: list[ResolvedApp] = []
    drafts: dict[str, DraftApp] = {}
    usable: set[str] = set()  # packages checked once, however many apps run them
    for app in env.apps:
        where = f"apps.{app.name}"
        try:
            if app.package not in usable:
                usable_package(session, env, app.package)
                usable.add(app.package)
            version = resolve_version(index, app.package, app.version)
        except ValidationFailed as failed:
            problems += [{**e, "path": f"{where}.{e['path']}"} for e in failed.errors or []]
            drafts[app.name] = index.draft_app(app, resolved=None)
            continue
        stored = app.parameters if kept is None else kept.get(app.name, {})
        parameters, errors = checked_parameters(
            version, app.parameters, stored, index.secrets(app.package), box_of(session)
        )
        problems += [{**e, "path": f"{where}.{e['path']}"} for e in errors]
        drafts[app.name] = index.draft_app(app, resolved=version)
        resolved.append(ResolvedApp(app.name, app.package, version, parameters, dict(app.bindings)))
    binding_problems = [p for name in sorted(drafts) for p in missing_required(drafts[name])]
    for name in sorted(drafts):
        if drafts[name].version is not None:  # an unresolved app's slots are unknown
            binding_problems += outgoing_problems(drafts[name], drafts)
    binding_problems += cycle_problems(drafts)
    problems += [{"path": f"apps.{p.app}.{p.path}", "message": p.message} for p in binding_problems]
    return resolved, sorted(problems, key=lambda p: (p["path"], p["message"]))


def check_deployable(session: Session, env: Environment) -> list[dict[str, str]]:
    """Every reason the draft cannot be deployed now, as [{path, message}] (empty: it can).

    Packages gone, disabled or hidden from the tenant; versions that resolve to nothing;
    parameters the resolved version refuses; required slots unbound; bindings to missing
    apps, unknown slots, wrong packages or versions; binding cycles.
    """
    return _resolve_draft(session, env)[1]


def draft_spec(session: Session, env: Environment) -> DeploymentSnapshot:
    """The deployment snapshot of the draft, or ValidationFailed listing check_deployable's
    problems: {settings, apps: [{name, package, version, digest, parameters, bindings,
    manifest}]} with every version resolved and parameter defaults applied."""
    resolved, problems = _resolve_draft(session, env)
    if problems:
        raise ValidationFailed(
            f"environment {env.name!r} cannot be deployed as drafted", errors=problems
        )
    return {"settings": dict(env.settings), "apps": [app.spec for app in resolved]}


def resolve_spec(
    session: Session,
    tenant_id: str,
    settings: dict,
    apps: Sequence[Mapping[str, Any]],
    kept: Mapping[str, dict] | None = None,
    index: PackageIndex | None = None,
) -> list[ResolvedApp]:
    """A spec not stored as an environment (a template's, or one made from it) resolved the
    way a deployment resolves a draft, or ValidationFailed with check_deployable's problems.

    `apps` are {name, package, version, parameters, bindings}; `kept` and `index` as for
    _resolve_draft (default: nothing kept, a MASK is refused).
    """
    draft = Environment(tenant_id=tenant_id, name="", settings=settings)
    draft.apps = [
        App(name=a["name"], package=a["package"], version=a.get("version"),
            parameters=a.get("parameters") or {}, bindings=a.get("bindings") or {})
        for a in apps
    ]  # fmt: skip
    resolved, problems = _resolve_draft(session, draft, {} if kept is None else kept, index)
    if problems:
        raise ValidationFailed("the apps cannot be deployed as given", errors=problems)
    return resolved


def snapshot_problems(session: Session, env: Environment, spec: Mapping[str, Any]) -> list[dict]:
    """Every reason an earlier revision's snapshot cannot be deployed again now.

    A snapshot keeps its versions and parameters, but its packages must still be usable as a
    draft's are (not deleted, disabled or hidden from the tenant since), and each version
    still published as it was (the same archive digest; a yanked version pinned exactly
    still deploys).
    """
    problems: list[dict[str, str]] = []
    for app in spec.get("apps", []):
        where = f"apps.{app['name']}"
        try:
            package = usable_package(session, env, app["package"])
        except ValidationFailed as failed:
            problems += [{**e, "path": f"{where}.{e['path']}"} for e in failed.errors or []]
            continue
        digest = session.scalar(
            select(PackageVersion.digest).where(
                PackageVersion.package_id == package.id,
                PackageVersion.version == app["version"],
            )
        )
        if digest != app["digest"]:
            message = f"{app['package']} {app['version']} is no longer published"
            problems.append({"path": f"{where}.version", "message": message})
    return sorted(problems, key=lambda p: (p["path"], p["message"]))


# -- packages in use -------------------------------------------------------------------------


def package_in_use(session: Session, package: Package, version: str | None) -> str | None:
    """Why `package` (or one version) may not be deleted, or None.

    In use: what runs or is about to, the spec of an environment's current revision or of a
    queued or running deployment. A draft or a template naming it does not hold it (it then
    shows a problem and refuses to deploy). Another tenant's environment is counted, not named.
    """
    uses: set[tuple[str, str, str, str]] = set()  # (tenant id, env name, env id, app)
    mentions = cast(Deployment.spec, Text).like(f'%"{package.name}"%')
    for deployment, env in session.execute(
        select(Deployment, Environment)
        .join(Environment, Deployment.environment_id == Environment.id)
        .where(
            mentions,
            or_(
                Deployment.revision == Environment.current_revision,
                Deployment.status.in_(IN_FLIGHT),
            ),
        )
    ):
        for app in deployment.spec.get("apps", []):
            if app.get("package") == package.name and version in (None, app.get("version")):
                uses.add((env.tenant_id, env.name, env.id, app["name"]))
    if not uses:
        return None
    label = package.name if version is None else f"{package.name} {version}"
    own = sorted((name, app) for tenant, name, _, app in uses if tenant == package.tenant_id)
    if own:
        env_name, app_name = own[0]
        more = len(own) - 1
        tail = f" and {more} more app(s)" if more else ""
        return f"package {label} is used by environment {env_name!r} (app {app_name!r}){tail}"
    count = len({env_id for _, _, env_id, _ in uses})
    return f"package {label} is used by {count} environment(s) of other tenants"
