"""What the API shows of environments: apps with status and endpoints, pending changes, and
parameters with every secret masked; built for many environments with a few queries."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, selectinload

from catalog.models import (
    App,
    AppStatus,
    ContainerRecord,
    Deployment,
    Environment,
    Host,
    HostPort,
    Package,
    PackageVersion,
)
from catalog.secretbox import SecretBox, box_of, revealed
from catalog.services.environment_rules import (
    DraftApp,
    app_status,
    canonical_spec,
    has_pending_changes,
    mask_secrets,
    secret_paths,
)
from packages.versions import select_version


@dataclass(frozen=True)
class EndpointView:
    """A published port: its host address, None on the default engine (PUBLIC_HOST)."""

    service: str
    container_port: int
    protocol: str
    port: int
    host: str | None


@dataclass(frozen=True)
class AppView:
    name: str
    package: str
    version: str | None
    resolved_version: str | None
    deployed_version: str | None
    status: AppStatus
    parameters: dict
    bindings: dict
    endpoints: list[EndpointView]
    created_at: datetime
    etag: str
    problem: str | None = None
    # What the new version's migrations did to the parameters, in the answer to the change.
    migrated: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnvironmentView:
    id: str
    name: str
    tenant: str
    host: str | None
    description: str
    status: str
    status_detail: str
    has_pending_changes: bool
    current_revision: int | None
    settings: dict
    apps: list[AppView]
    created_at: datetime
    updated_at: datetime
    etag: str

    def app(self, name: str) -> AppView:
        return next(a for a in self.apps if a.name == name)


# draft_app's default: resolve the app's own version constraint.
UNRESOLVED = object()


def etag_of(env: Environment) -> str:
    return f'"{env.draft_version}"'


class PackageIndex:
    """The packages some drafts refer to, with all their versions, loaded at once."""

    def __init__(self, session: Session, names: Iterable[str]) -> None:
        wanted = set(names)
        rows: Iterable[Package] = (
            session.scalars(
                select(Package)
                .where(Package.name.in_(wanted))
                .options(selectinload(Package.versions))
            )
            if wanted
            else []
        )
        self.packages: dict[str, Package] = {p.name: p for p in rows}
        self._secrets: dict[str, tuple[dict, ...]] = {}

    def unusable(self, name: str, tenant_id: str) -> str | None:
        """Why the tenant's drafts cannot deploy package `name` now, or None.

        Deleted and hidden from the tenant read alike: a draft tells nothing of another
        tenant's packages.
        """
        package = self.packages.get(name)
        if package is None or not (
            package.tenant_id == tenant_id or (package.visibility == "public" and package.enabled)
        ):
            return f"no package {name!r}: it was deleted or is no longer available"
        if not package.enabled:
            return f"package {name!r} is disabled"
        return None

    def problem(self, tenant_id: str, name: str, constraint: str | None) -> str | None:
        """What keeps an app of package `name` at `constraint` from deploying, or None."""
        unusable = self.unusable(name, tenant_id)
        if unusable is None and self.resolve(name, constraint) is None:
            wanted = f"matches {constraint!r}" if constraint else "is published and not yanked"
            return f"no version of {name} {wanted}"
        return unusable

    def resolve(self, name: str, constraint: str | None) -> PackageVersion | None:
        """The version `constraint` picks now (yanked ones only when pinned), or None."""
        package = self.packages.get(name)
        if package is None:
            return None
        versions = {v.version: v for v in package.versions}
        yanked = [v.version for v in package.versions if v.yanked]
        try:
            chosen = select_version(constraint, versions, yanked=yanked)
        except ValueError:
            return None
        return versions[chosen] if chosen else None

    def secrets(self, name: str) -> tuple[dict, ...]:
        """The parameter schemas of every version of the package, each once: a secret one
        version marks stays hidden whatever version the app runs (see `secret_paths`)."""
        if name not in self._secrets:
            package = self.packages.get(name)
            schemas: dict[str, dict] = {}
            for version in package.versions if package else []:
                schema = version.manifest.get("parameters")
                if isinstance(schema, dict):
                    schemas.setdefault(json.dumps(schema, sort_keys=True), schema)
            self._secrets[name] = tuple(schemas.values())
        return self._secrets[name]

    def draft_app(
        self,
        app: App,
        *,
        resolved: PackageVersion | object | None = UNRESOLVED,
        bindings: dict[str, str] | None = None,
    ) -> DraftApp:
        """`app` as the binding rules see it, with a version or bindings not stored yet."""
        if resolved is UNRESOLVED:
            resolved = self.resolve(app.package, app.version)
        found = resolved if isinstance(resolved, PackageVersion) else None
        return DraftApp(
            name=app.name,
            package=app.package,
            version=found.version if found else None,
            bindings=dict(app.bindings if bindings is None else bindings),
            slots=found.manifest.get("bindings", {}) if found else {},
        )


def describe_many(session: Session, envs: list[Environment]) -> list[EnvironmentView]:
    """Views of environments: apps with status and endpoints, pending changes, secrets masked."""
    if not envs:
        return []
    ids = [e.id for e in envs]
    index = PackageIndex(session, {a.package for e in envs for a in e.apps})
    current = {
        d.environment_id: d
        for d in session.scalars(
            select(Deployment)
            .join(
                Environment,
                and_(
                    Deployment.environment_id == Environment.id,
                    Deployment.revision == Environment.current_revision,
                ),
            )
            .where(Environment.id.in_(ids))
        )
    }
    containers = defaultdict(list)
    for record in session.scalars(
        select(ContainerRecord).where(ContainerRecord.environment_id.in_(list(current)))
    ):
        containers[record.environment_id, record.app].append(record)
    ports = defaultdict(list)
    for port in session.scalars(
        select(HostPort)
        .where(HostPort.environment_id.in_(list(current)))
        .order_by(HostPort.service, HostPort.container_port, HostPort.protocol)
    ):
        ports[port.environment_id, port.app].append(port)
    host_ids = {e.host_id for e in envs if e.host_id is not None}
    hosts = (
        {h.id: h for h in session.scalars(select(Host).where(Host.id.in_(host_ids)))}
        if host_ids
        else {}
    )
    box = box_of(session)
    return [
        _view(
            env,
            hosts.get(env.host_id) if env.host_id else None,
            index,
            current.get(env.id),
            containers,
            ports,
            box,
        )
        for env in envs
    ]


def _view(
    env: Environment,
    host: Host | None,
    index: PackageIndex,
    deployment: Deployment | None,
    containers: dict[tuple[str, str], list[ContainerRecord]],
    ports: dict[tuple[str, str], list[HostPort]],
    box: SecretBox,
) -> EnvironmentView:
    spec = deployment.spec if deployment is not None else None
    deployed = {a["name"]: a for a in spec.get("apps", [])} if spec else {}
    etag = etag_of(env)
    address = host.public_host if host is not None else None
    apps, draft = [], []
    for app in env.apps:
        problem = index.problem(env.tenant_id, app.package, app.version)
        resolved = index.resolve(app.package, app.version) if problem is None else None
        running = deployed.get(app.name)
        # A running version's schema may lack parameters: None marks nothing secret.
        schemas: tuple[dict | None, ...] = index.secrets(app.package)
        if running is not None:
            schemas += (running.get("manifest", {}).get("parameters"),)
        hidden = secret_paths(app.parameters, schemas)
        apps.append(
            AppView(
                name=app.name,
                package=app.package,
                version=app.version,
                resolved_version=resolved.version if resolved else None,
                deployed_version=running["version"] if running else None,
                status=app_status(
                    running is not None,
                    deployment.status if deployment is not None else None,
                    containers.get((env.id, app.name), ()),
                ),
                parameters=mask_secrets(app.parameters, hidden),
                bindings=dict(app.bindings),
                endpoints=[
                    EndpointView(p.service, p.container_port, p.protocol, p.port, address)
                    for p in ports.get((env.id, app.name), [])
                ]
                if running
                else [],
                created_at=app.created_at,
                etag=etag,
                problem=problem,
            )
        )
        draft.append(
            {
                "name": app.name,
                "package": app.package,
                "version": resolved.version if resolved else None,
                "parameters": app.parameters,
                "bindings": app.bindings,
            }
        )
    return EnvironmentView(
        id=env.id,
        name=env.name,
        tenant=env.tenant.name,
        host=host.name if host is not None else None,
        description=env.description,
        status=env.status,
        status_detail=env.status_detail,
        has_pending_changes=has_pending_changes(
            canonical_spec(env.settings, draft), spec, lambda s: revealed(s, box)
        ),
        current_revision=env.current_revision,
        settings=dict(env.settings),
        apps=apps,
        created_at=env.created_at,
        updated_at=env.updated_at,
        etag=etag,
    )


def describe(session: Session, env: Environment) -> EnvironmentView:
    return describe_many(session, [env])[0]
