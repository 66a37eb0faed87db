"""Templates: an environment's settings and apps, kept to make more environments like it.

A template is made from apps as given (the shape `POST /environments/{env}/apps` takes) or
from an environment's draft, and it must pass the checks a deployment makes: packages the
tenant may deploy, versions that resolve, parameters their schema accepts, required bindings
bound, no cycles. Version constraints are kept as written, so `^1.2.0` picks the newest 1.x
each time an environment is made from the template.

Making an environment from a template writes its draft, checked the same way, in one
transaction; nothing is deployed until `POST .../deployments`, as for any environment.
Settings given then are merged over the template's, and each app's parameters over the
template's, key by key at the top level.

Secrets are kept the way environments keep them: stored sealed, shown as MASK, and a MASK sent at a
secret's place when making an environment keeps the template's value. A template made from an
environment keeps that environment's secrets (and the defaults applied when its apps were
added); it is the same tenant's, like the environment, and an admin makes templates and
environments from templates only in its own tenant. Each app keeps the places of its secret
parameters as they were when the template was made, so they stay masked after the package, or the
version that marked them `x-secret`, is deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.auth import Principal, require_role
from catalog.errors import Conflict, NotFound, ValidationFailed
from catalog.models import App, Template, Tenant
from catalog.secretbox import box_of, seal_at
from catalog.services import audit
from catalog.services.environment_checks import invalid, resolve_spec
from catalog.services.environment_rules import SecretPath, mask_secrets, secret_paths
from catalog.services.environment_views import EnvironmentView, PackageIndex
from catalog.services.environments import create_environment, get_environment
from catalog.services.lookup import commit_or_conflict, find_owned, name_taken
from catalog.services.pagination import page_by_name
from catalog.services.quotas import DEFAULT_QUOTAS, Quotas

APP_FIELDS = ("name", "package", "version", "parameters", "bindings")
SECRETS = "secrets"  # in a stored app: the places of its secret parameters, as lists


@dataclass(frozen=True)
class TemplateView:
    id: str
    name: str
    tenant: str
    description: str
    source: str | None
    settings: dict
    apps: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


def _views(
    session: Session, templates: list[Template], index: PackageIndex | None = None
) -> list[TemplateView]:
    """Views with every secret masked; the packages of all of them are read at once (unless
    the caller has them in `index`)."""
    index = index or PackageIndex(session, {a["package"] for t in templates for a in t.apps})
    return [
        TemplateView(
            id=t.id,
            name=t.name,
            tenant=t.tenant.name,
            description=t.description,
            source=t.source,
            settings=dict(t.settings),
            apps=[
                {
                    **_spec(a),
                    "parameters": mask_secrets(a["parameters"], _secrets(a, index)),
                    "problem": index.problem(t.tenant_id, a["package"], a["version"]),
                }
                for a in t.apps
            ],
            created_at=t.created_at,
            updated_at=t.updated_at,
        )
        for t in templates
    ]


def _spec(app: dict[str, Any]) -> dict[str, Any]:
    """A stored app as `POST .../apps` takes it."""
    return {f: app[f] for f in APP_FIELDS}


def _secrets(app: dict[str, Any], index: PackageIndex) -> frozenset[SecretPath]:
    """Secret paths of a stored app: its package's now, and those it was stored with."""
    now = secret_paths(app["parameters"], index.secrets(app["package"]))
    return now | {tuple(path) for path in app.get(SECRETS, ())}


def _own(principal: Principal, tenant: Tenant, kind: str, name: str) -> None:
    """409 for an admin naming another tenant's object: templates stay within a tenant."""
    if tenant.id != principal.tenant_id:
        raise Conflict(
            f"{kind} {name!r} belongs to tenant {tenant.name!r}; templates and the "
            "environments made from them stay in the token's own tenant"
        )


def get_template(session: Session, principal: Principal, ref: str) -> Template:
    """The caller's template named (or with the id) `ref`; 404 for another tenant's."""
    return find_owned(session, principal, Template, "template", ref)


def create_template(session: Session, principal: Principal, body: dict[str, Any]) -> TemplateView:
    """A template of `body["apps"]`, or of the draft of `body["environment"]` (deployer)."""
    require_role(principal, "deployer")
    name = body["name"]
    taken = f"template {name!r} exists already"
    if name_taken(session, Template, principal.tenant_id, name):
        raise Conflict(taken)
    source = None
    if "environment" in body:
        try:
            env = get_environment(session, principal, body["environment"])
        except NotFound as missing:
            raise invalid("environment", missing.detail) from None
        _own(principal, env.tenant, "environment", env.name)
        if not env.apps:
            raise invalid("environment", f"environment {env.name!r} has no apps to keep")
        apps = [{f: getattr(a, f) for f in APP_FIELDS} for a in env.apps]
        settings, source = dict(env.settings), env.name
    else:
        apps = [_spec(a) for a in body["apps"]]
        settings = {}
    settings = body.get("settings", settings)
    index = PackageIndex(session, {a["package"] for a in apps})
    resolve_spec(session, principal.tenant_id, settings, apps, index=index)
    box = box_of(session)
    for app in apps:
        found = secret_paths(app["parameters"], index.secrets(app["package"]))
        app[SECRETS] = sorted((list(path) for path in found), key=json.dumps)
        app["parameters"] = seal_at(app["parameters"], found, box)
    template = Template(
        tenant_id=principal.tenant_id,
        name=name,
        description=body["description"],
        settings=settings,
        apps=apps,
        source=source,
    )
    session.add(template)
    session.flush()
    audit.record(
        session,
        principal,
        "template.create",
        "template",
        template.id,
        detail={
            "name": name,
            "environment": source,
            "apps": [{"name": a["name"], "package": a["package"]} for a in apps],
        },
    )
    commit_or_conflict(session, taken)
    return _views(session, [template], index)[0]


def list_templates(
    session: Session, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[TemplateView], str | None]:
    """The caller's templates (every tenant's for an admin), keyset-paginated by name."""
    query = select(Template)
    if not principal.is_admin:
        query = query.where(Template.tenant_id == principal.tenant_id)
    page, following = page_by_name(session, query, Template, limit, cursor)
    return _views(session, page), following


def show_template(session: Session, principal: Principal, ref: str) -> TemplateView:
    return _views(session, [get_template(session, principal, ref)])[0]


def delete_template(session: Session, principal: Principal, ref: str) -> None:
    """Delete a template (deployer); environments made from it stay as they are."""
    template = get_template(session, principal, ref)
    require_role(principal, "deployer")
    audit.record(
        session,
        principal,
        "template.delete",
        "template",
        template.id,
        tenant_id=template.tenant_id,
        detail={"name": template.name},
    )
    session.delete(template)
    session.commit()


def create_environment_from(
    session: Session,
    principal: Principal,
    ref: str,
    body: dict[str, Any],
    quotas: Quotas = DEFAULT_QUOTAS,
) -> EnvironmentView:
    """A new environment in the caller's tenant whose draft is the template's apps (deployer).

    `body`: name, description (default: the template's), settings merged over the
    template's, and by app, parameters merged over the template's.
    """
    template = get_template(session, principal, ref)
    require_role(principal, "deployer")
    _own(principal, template.tenant, "template", template.name)
    overrides = body["parameters"]
    unknown = sorted(set(overrides) - {a["name"] for a in template.apps})
    if unknown:
        raise ValidationFailed(
            f"template {template.name!r} has no app {unknown[0]!r}",
            errors=[
                {"path": f"parameters.{app}", "message": f"no app {app!r} in the template"}
                for app in unknown
            ],
        )
    settings = {**template.settings, **body["settings"]}
    apps = [
        {**_spec(a), "parameters": {**a["parameters"], **overrides.get(a["name"], {})}}
        for a in template.apps
    ]
    kept = {a["name"]: a["parameters"] for a in template.apps}
    resolved = resolve_spec(session, principal.tenant_id, settings, apps, kept)
    return create_environment(
        session,
        principal,
        body["name"],
        body.get("description", template.description),
        settings,
        apps=[
            App(
                name=r.name,
                package=a["package"],
                version=a["version"],
                parameters=r.parameters,
                bindings=dict(a["bindings"]),
            )
            for a, r in zip(apps, resolved, strict=True)
        ],
        template=template.name,
        host=body["host"],
        quotas=quotas,
    )
