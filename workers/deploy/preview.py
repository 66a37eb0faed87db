"""What deploying a snapshot now would do, without doing any of it: the plan before a deploy.

The same preparation (`prepare`: every template rendered in a child with the deploy's
limits, every image resolved, every config hash computed) and the same planner (`plan`,
against the engine's containers of the environment) as a deployment's, with three
differences that change nothing of the outcome:

- images are never pulled or loaded: an image not on the engine yet stands for itself
  (`absent:<reference>`), so its service is replaced, as a deploy that pulls it would;
- host ports are never allocated: a published port has the port it was given before, or
  none yet (a new published port changes its container in any case);
- nothing is written: no deployment, event, lease, network or host port.

Each change says why: the planner's reason, then what differs from the revision running
now, key by key (the package version, a parameter, a setting, an environment variable, a
file, the image). Values are never shown: parameters and environment variables may be
secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from packages.container import RuntimeDefaults
from packages.imageref import PullPolicy, RegistryPolicy
from packages.render_process import RenderLimits, RenderProcess
from workers.deploy.images import catalog_image_name
from workers.deploy.planner import Plan, Step, Strategy, plan
from workers.deploy.prepare import Prepared, prepare, published_ports
from workers.engine import Engine, EngineError

Key = tuple[str, str, int]  # (app, service, replica)

ACTIONS = ("create", "replace", "remove", "keep")


@dataclass(frozen=True)
class Change:
    """What a deploy would do to one container slot, and why."""

    app: str | None
    service: str | None
    action: str  # create, replace, remove or keep
    reasons: list[str] = field(default_factory=list)
    replica: int | None = 0


@dataclass(frozen=True)
class Preview:
    revision: int  # the revision a deploy now would make
    changes: list[Change]

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)


@dataclass(frozen=True)
class PreviewInputs:
    """What the preview reads: the engine of the environment's host, the package archives."""

    engine: Engine
    read_member: Callable[[str, str], bytes]
    registries: RegistryPolicy
    limits: RenderLimits = field(default_factory=RenderLimits)
    defaults: RuntimeDefaults = field(default_factory=RuntimeDefaults)


def preview(
    inputs: PreviewInputs,
    *,
    env_id: str,
    env_name: str,
    tenant_id: str,
    revision: int,
    spec: Mapping[str, Any],
    running: Mapping[str, Any] | None,
    host_ports: Mapping[tuple[str, str, int, str], int],
) -> Preview:
    """The changes deploying `spec` (secrets opened) as `revision` would make, given the
    revision `running` now (its snapshot, secrets opened; None before the first deploy).

    Raises PrepareError or RenderError as the deploy would fail with them.
    """

    resolved: dict[str, str] = {}  # reference or bundled name -> id, once per preview

    def image_id(image: Any, app: Mapping[str, Any], _policy: PullPolicy) -> str:
        # The preview pulls nothing, whatever the policy: an image not on the engine yet
        # stands for itself.
        key = image if isinstance(image, str) else repr((app["digest"], sorted(image.items())))
        if key not in resolved:
            resolved[key] = _image_id(inputs, image, app, tenant_id)
        return resolved[key]

    with RenderProcess(inputs.limits) as templates:

        def containers(snapshot: Mapping[str, Any]) -> list[Prepared]:
            ports = {k: host_ports.get(k, 0) for k in published_ports(snapshot["apps"])}
            return prepare(
                snapshot,
                env_name,
                read_member=inputs.read_member,
                image_id=image_id,
                host_ports=ports,
                runtime_defaults=inputs.defaults,
                templates=templates,
            )

        wanted = containers(spec)
        observed = inputs.engine.observe(env_id)
        # Fencing 0: no container counts as a stale attempt at a revision not yet made.
        the_plan = plan([p.desired() for p in wanted], observed, revision=revision, fencing=0)
        # The running revision, for the reasons: only the apps replaced, and what they bind.
        replaced = {s.app for s in the_plan.start if s.container_id and s.app}
        before = containers(_apps_of(running, replaced)) if running and replaced else []
    return Preview(revision, _changes(the_plan, spec, running, wanted, before))


def _apps_of(snapshot: Mapping[str, Any], names: set[str]) -> dict[str, Any]:
    """`snapshot` with only the apps `names` and the apps they bind to, transitively."""
    by_name = {a["name"]: a for a in snapshot["apps"]}
    wanted: set[str] = set()
    pending = [n for n in names if n in by_name]
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending += [b for b in by_name[name].get("bindings", {}).values() if b in by_name]
    return {**snapshot, "apps": [a for a in snapshot["apps"] if a["name"] in wanted]}


def _image_id(inputs: PreviewInputs, image: Any, app: Mapping[str, Any], tenant_id: str) -> str:
    if isinstance(image, str):
        try:
            return inputs.engine.image_id(image, pull=False, registries=inputs.registries)
        except EngineError:
            return f"absent:{image}"
    name = catalog_image_name(
        tenant_id, app["package"], app["digest"], image["bundled"], image.get("tag")
    )
    return inputs.engine.image_named(name) or f"absent:{name}"


def _changes(
    the_plan: Plan,
    spec: Mapping[str, Any],
    running: Mapping[str, Any] | None,
    wanted: list[Prepared],
    before: list[Prepared],
) -> list[Change]:
    new = {p.key: p for p in wanted}
    old = {p.key: p for p in before}
    apps = {a["name"]: a for a in spec["apps"]}
    old_apps = {a["name"]: a for a in (running or {}).get("apps", [])}
    settings = _changed_keys(spec.get("settings", {}), (running or {}).get("settings", {}))
    changes = [Change(s.app, s.service, "keep", [s.reason], s.replica) for s in the_plan.keep]
    for step in the_plan.start:
        key = (step.app or "", step.service or "", step.replica or 0)
        if step.container_id is None:
            changes.append(Change(step.app, step.service, "create", [step.reason], step.replica))
            continue
        reasons = [step.reason]
        reasons += _app_reasons(apps.get(key[0]), old_apps.get(key[0]), settings)
        reasons += _service_reasons(new[key], old.get(key))
        changes.append(Change(step.app, step.service, "replace", reasons, step.replica))
    replaced = {(s.app, s.service, s.replica) for s in the_plan.start if s.container_id}
    for step in (*the_plan.remove_now, *the_plan.remove_after):
        if (step.app, step.service, step.replica) in replaced and _is_replacement(step):
            continue  # the old container of a replace: said once, as the replace
        changes.append(Change(step.app, step.service, "remove", [step.reason], step.replica))
    return sorted(changes, key=lambda c: (c.app or "", c.service or "", c.replica or 0))


def _is_replacement(step: Step) -> bool:
    return step.strategy is Strategy.REMOVE and step.reason.startswith("replaced:")


def _app_reasons(
    app: Mapping[str, Any] | None, was: Mapping[str, Any] | None, settings: list[str]
) -> list[str]:
    if app is None or was is None:
        return []
    reasons = []
    if app.get("version") != was.get("version"):
        reasons.append(f"version {was.get('version')} -> {app.get('version')}")
    reasons += [
        f"parameter {k}"
        for k in _changed_keys(app.get("parameters", {}), was.get("parameters", {}))
    ]
    for slot in _changed_keys(app.get("bindings", {}), was.get("bindings", {})):
        reasons.append(f"binding {slot}")
    reasons += [f"setting {k}" for k in settings]
    return reasons


def _service_reasons(new: Prepared, old: Prepared | None) -> list[str]:
    """What of the container differs, by name: the image, environment variables, files,
    published ports, other fields of the service."""
    if old is None:
        return []
    reasons = []
    if new.rendered.get("image") != old.rendered.get("image"):
        reasons.append(f"image {_image_text(old)} -> {_image_text(new)}")
    elif new.image_id != old.image_id:
        reasons.append(f"image {_image_text(new)}: another image now")
    reasons += [
        f"environment {k}"
        for k in _changed_keys(
            new.rendered.get("environment", {}), old.rendered.get("environment", {})
        )
    ]
    reasons += [f"file {path}" for path in _changed_keys(new.files, old.files)]
    if new.host_ports != old.host_ports:
        reasons.append("published ports")
    told = {"image", "environment", "files"}
    for name in sorted((new.rendered.keys() | old.rendered.keys()) - told):
        if new.rendered.get(name) != old.rendered.get(name):
            reasons.append(name)
    return reasons


def _image_text(prepared: Prepared) -> str:
    image = prepared.rendered.get("image")
    if isinstance(image, Mapping):
        return f"bundled {image.get('bundled')}"
    return str(image)


def _changed_keys(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    """Keys added, removed or given another value (sorted; never the values)."""
    return sorted(
        k for k in new.keys() | old.keys() if new.get(k, _MISSING) != old.get(k, _MISSING)
    )


_MISSING = object()
