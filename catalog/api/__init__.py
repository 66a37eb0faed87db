"""HTTP routes of API v1: each handler is decorators plus one call into a service."""

from __future__ import annotations

from flask_smorest import Api


def register_blueprints(api: Api) -> None:
    from catalog.api import (
        audit,
        categories,
        deployments,
        environments,
        health,
        hosts,
        images,
        observe,
        packages,
        registries,
        snapshots,
        templates,
        tenants,
        webhooks,
    )

    modules = (
        health, tenants, hosts, categories, packages, environments, deployments, observe,
        templates, audit, webhooks, images, registries, snapshots,
    )  # fmt: skip
    for module in modules:
        api.register_blueprint(module.blp, url_prefix="/v1")
