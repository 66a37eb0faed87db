"""From a deployment's snapshot to the exact containers it asks for: render, resolve, hash."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from packages.container import config_hash
from packages.graph import Cycle, dependency_order
from packages.imageref import PullPolicy, pull_policy_of
from packages.render import (
    TextRenderer,
    render_file,
    render_outputs,
    render_service,
    template_context,
)
from workers.deploy.planner import DesiredContainer
from workers.engine.names import hostname


class Templates(Protocol):
    """Where templates render: `bind(context)` gives the renderer of one app's templates."""

    def bind(self, context: Mapping[str, Any]) -> TextRenderer: ...


class PrepareError(Exception):
    """The snapshot cannot become containers (render, image, archive); names app and service."""


@dataclass(frozen=True)
class Prepared:
    """One container this revision asks for, ready to be created."""

    app: str
    service: str
    replica: int
    rendered: dict[str, Any]  # the rendered service
    files: dict[str, bytes]  # container path -> rendered bytes
    image_id: str
    host_ports: dict[tuple[int, str], int]
    config_hash: str
    depends_on: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.app, self.service, self.replica)

    @property
    def publishes_ports(self) -> bool:
        return bool(self.host_ports)

    def desired(self) -> DesiredContainer:
        return DesiredContainer(
            app=self.app,
            service=self.service,
            replica=self.replica,
            config_hash=self.config_hash,
            publishes_ports=self.publishes_ports,
            depends_on=self.depends_on,
        )


def binding_order(apps: list[dict]) -> list[dict]:
    """Apps ordered so that every app comes after the apps it binds to."""
    by_name = {a["name"]: a for a in apps}
    graph = {name: sorted(by_name[name].get("bindings", {}).values()) for name in sorted(by_name)}
    try:
        return [by_name[name] for name in dependency_order(graph)]
    except Cycle as exc:
        raise PrepareError(f"bindings form a cycle: {exc}") from None


def published_ports(apps: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, int, str]]:
    return [
        (app["name"], name, port["container"], port.get("protocol", "tcp"))
        for app in apps
        for name, service in sorted(app["manifest"].get("services", {}).items())
        for port in service.get("ports", [])
        if port.get("publish")
    ]


def prepare(
    spec: Mapping[str, Any],
    env_name: str,
    *,
    read_member: Callable[[str, str], bytes],
    image_id: Callable[[Any, Mapping[str, Any], PullPolicy], str],
    host_ports: Mapping[tuple[str, str, int, str], int],
    runtime_defaults: Any,
    templates: Templates,
) -> list[Prepared]:
    """Every container of the snapshot, rendered with its bindings' outputs.

    `read_member(digest, member)` reads a file of a package archive; `image_id(image, app,
    pull_policy)` resolves a service's image (of the app's snapshot entry) to the engine's id;
    `templates` renders (a `packages.render_process.RenderProcess` in the workers).
    """
    outputs: dict[str, dict[str, str]] = {}
    prepared: list[Prepared] = []
    apps = binding_order(list(spec["apps"]))
    services_of = {a["name"]: sorted(a["manifest"].get("services", {})) for a in apps}
    for app in apps:
        manifest = app["manifest"]
        services = manifest.get("services", {})
        context = template_context(
            params=app.get("parameters", {}),
            settings=spec.get("settings", {}),
            bindings={
                slot: outputs.get(bound, {}) for slot, bound in app.get("bindings", {}).items()
            },
            services={name: {"hostname": hostname(app["name"], name)} for name in services},
            app={"name": app["name"], "env": env_name},
        )
        render = templates.bind(context)
        outputs[app["name"]] = render_outputs(manifest.get("outputs", {}), render)
        bound_services = frozenset(
            (bound, service)
            for bound in app.get("bindings", {}).values()
            for service in services_of.get(bound, [])
        )
        for name in sorted(services):
            prepared.append(
                _prepare_service(
                    app, name, services[name], render, bound_services,
                    read_member, image_id, host_ports, runtime_defaults,
                )
            )  # fmt: skip
    return prepared


def _prepare_service(
    app, name, service, render, bound_services, read_member, image_id, host_ports, defaults
) -> Prepared:
    rendered = render_service(name, service, render)
    files = {
        path: render_file(name, path, member, read_member(app["digest"], member), render)
        for path, member in sorted(service.get("files", {}).items())
    }
    try:
        image = image_id(service["image"], app, pull_policy_of(service))
    except Exception as exc:
        raise PrepareError(f"{app['name']}/{name}: {exc}") from None
    ports = {
        (port["container"], port.get("protocol", "tcp")): host_ports[
            (app["name"], name, port["container"], port.get("protocol", "tcp"))
        ]
        for port in service.get("ports", [])
        if port.get("publish")
    }
    depends_on = frozenset((app["name"], other) for other in service.get("depends_on", []))
    return Prepared(
        app=app["name"],
        service=name,
        replica=0,
        rendered=rendered,
        files=files,
        image_id=image,
        host_ports=ports,
        config_hash=config_hash(
            rendered, image_id=image, files=files, host_ports=ports, defaults=defaults
        ),
        depends_on=depends_on | bound_services,
    )
