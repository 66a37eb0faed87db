"""Pure rules of an environment's draft: secrets, bindings, cycles, pending changes, app status.

Nothing here touches the database: callers hand in plain values, so every rule is unit-tested
without one (tests/unit/test_environment_rules.py).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from catalog.models import AppStatus, DeploymentStatus
from catalog.secretbox import is_sealed
from packages.graph import shortest_cycle
from packages.secrets import Location, lookup, secret_locations
from packages.versions import parse_range, parse_version

# What the API shows instead of an `x-secret` parameter; sent back, it keeps the stored value.
MASK = "********"

SecretPath = Location  # keys of mappings and indexes of lists

# -- secrets ---------------------------------------------------------------------------------


def secret_paths(values: Any, schemas: Iterable[Any]) -> frozenset[SecretPath]:
    """Places in `values` that any of `schemas` marks `x-secret`, wherever the schema puts it
    (packages/secrets.py). Tuples rather than dotted names: a key may itself contain a dot.

    A schema marking the whole of the parameters secret hides each of them.
    """
    found = secret_locations(values, schemas)
    if () in found:
        return frozenset((key,) for key in values) if isinstance(values, dict) else frozenset()
    return found


def _replace(values: dict, path: SecretPath, value: Any) -> None:
    for part in path[:-1]:
        values = values[part]
    values[path[-1]] = value


def mask_secrets(values: Mapping[str, Any], secrets: Collection[SecretPath]) -> dict[str, Any]:
    """A copy of `values` where every secret that is set reads MASK, and so does every sealed
    value wherever it is (a token is never shown either)."""
    masked = _mask_sealed(dict(values))
    for path in sorted(secrets, key=lambda p: (-len(p), json.dumps(p))):  # innermost first
        if lookup(masked, path)[0]:
            _replace(masked, path, MASK)
    return masked


def _mask_sealed(values: Any) -> Any:
    if is_sealed(values):
        return MASK
    if isinstance(values, dict):
        return {key: _mask_sealed(item) for key, item in values.items()}
    if isinstance(values, list):
        return [_mask_sealed(item) for item in values]
    return copy.deepcopy(values)


def restore_secrets(
    values: Mapping[str, Any], stored: Mapping[str, Any], secrets: Collection[SecretPath]
) -> tuple[dict[str, Any], list[SecretPath]]:
    """`values` with each MASK at a secret's path replaced by the stored secret.

    Also returns the paths that were sent as MASK but have no stored value to keep.
    """
    restored = copy.deepcopy(dict(values))
    missing = []
    for path in sorted(secrets, key=lambda p: (len(p), json.dumps(p))):  # outermost first
        present, value = lookup(restored, path)
        if not present or value != MASK:
            continue
        kept, old = lookup(stored, path)
        if kept:
            _replace(restored, path, copy.deepcopy(old))
        else:
            missing.append(path)
    return restored, missing


# -- bindings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftApp:
    """An app of the draft as the binding rules see it.

    `version` is the version its constraint resolves to now (None when nothing matches);
    `slots` are the binding slots of that version's manifest (`{slot: {package, version?,
    required}}`).
    """

    name: str
    package: str
    version: str | None
    bindings: Mapping[str, str] = field(default_factory=dict)
    slots: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class DraftProblem:
    """One thing wrong with the draft: the app, a path inside it, and what."""

    app: str
    path: str
    message: str


def satisfies(version: str, version_range: str) -> bool:
    """Whether an exact version matches an npm-style range; False for unparsable input."""
    try:
        return parse_range(version_range).match(parse_version(version))
    except ValueError:
        return False


def _slot_refusal(binder: DraftApp, slot: str, target: DraftApp | None) -> str | None:
    """Why `binder` may not bind `slot` to `target` (None when it may)."""
    spec = binder.slots.get(slot)
    if spec is None:
        slots = ", ".join(sorted(binder.slots)) or "none"
        return f"{binder.package} has no binding slot {slot!r} (its slots: {slots})"
    wanted = binder.bindings[slot]
    if wanted == binder.name:
        return "an app cannot bind to itself"
    if target is None:
        return f"there is no app {wanted!r} in this environment"
    if target.package != spec["package"]:
        return (
            f"slot {slot!r} needs an app of package {spec['package']}; "
            f"{target.name!r} is {target.package}"
        )
    version_range = spec.get("version")
    if version_range and target.version and not satisfies(target.version, version_range):
        return (
            f"slot {slot!r} needs {spec['package']} {version_range}; "
            f"{target.name!r} resolves to {target.version}"
        )
    return None


def outgoing_problems(app: DraftApp, apps: Mapping[str, DraftApp]) -> list[DraftProblem]:
    """Problems of the bindings `app` declares: unknown slot, missing app, wrong package/version."""
    found = []
    for slot in sorted(app.bindings):
        reason = _slot_refusal(app, slot, apps.get(app.bindings[slot]))
        if reason:
            found.append(DraftProblem(app.name, f"bindings.{slot}", reason))
    return found


def incoming_problems(app: DraftApp, apps: Mapping[str, DraftApp]) -> list[DraftProblem]:
    """Binders of `app` whose slot's version range its resolved version no longer meets."""
    found = []
    for binder in sorted(apps.values(), key=lambda a: a.name):
        for slot, target in sorted(binder.bindings.items()):
            if target != app.name or binder.name == app.name:
                continue
            spec = binder.slots.get(slot) or {}
            version_range = spec.get("version")
            if (
                version_range
                and app.version is not None
                and spec.get("package") == app.package
                and not satisfies(app.version, version_range)
            ):
                found.append(
                    DraftProblem(
                        app.name,
                        "version",
                        f"{binder.name!r} binds this app through slot {slot!r}, which needs "
                        f"{app.package} {version_range}; this resolves to {app.version}",
                    )
                )
    return found


def missing_required(app: DraftApp) -> list[DraftProblem]:
    """Required slots of `app` left unbound (allowed in the draft, refused at deploy)."""
    return [
        DraftProblem(app.name, f"bindings.{slot}", f"slot {slot!r} is required but not bound")
        for slot, spec in sorted(app.slots.items())
        if spec.get("required", True) and slot not in app.bindings
    ]


def _graph(apps: Mapping[str, DraftApp]) -> dict[str, list[str]]:
    return {
        name: sorted({t for t in app.bindings.values() if t in apps}) for name, app in apps.items()
    }


def cycle_through(start: str, apps: Mapping[str, DraftApp]) -> list[str] | None:
    """The shortest binding cycle through `start` as [start, ..., start], or None."""
    return shortest_cycle(_graph(apps), start)


def cycle_problem(app: DraftApp, apps: Mapping[str, DraftApp]) -> DraftProblem | None:
    """The binding cycle that runs through `app`, reported on the binding that starts it."""
    cycle = cycle_through(app.name, apps)
    if cycle is None or cycle == [app.name, app.name]:
        return None  # none, or a self-binding, which outgoing_problems reports
    slot = min(s for s, t in app.bindings.items() if t == cycle[1])
    return DraftProblem(app.name, f"bindings.{slot}", "binding cycle: " + " -> ".join(cycle))


def cycle_problems(apps: Mapping[str, DraftApp]) -> list[DraftProblem]:
    """One problem per binding cycle of the whole draft (on its first app by name)."""
    found, seen = [], set()
    for name in sorted(apps):
        if name in seen:
            continue
        problem = cycle_problem(apps[name], apps)
        if problem is not None:
            seen.update(cycle_through(name, apps) or [])
            found.append(problem)
    return found


class Binder(Protocol):
    """Anything with a name and bindings: a DraftApp, or an App row."""

    @property
    def name(self) -> str: ...
    @property
    def bindings(self) -> Mapping[str, str]: ...


def binders_of(name: str, apps: Iterable[Binder]) -> list[tuple[str, str]]:
    """(binder, slot) of every other app bound to `name`."""
    return sorted(
        (app.name, slot)
        for app in apps
        if app.name != name
        for slot, target in app.bindings.items()
        if target == name
    )


# -- pending changes -------------------------------------------------------------------------

SPEC_APP_KEYS = ("name", "package", "version", "parameters", "bindings")


def canonical_spec(settings: Mapping[str, Any] | None, apps: Iterable[Mapping[str, Any]]) -> dict:
    """The part of a spec a user edits, in one comparable shape.

    Draft apps must be given with their version resolved, as a deployment records it.
    """
    return {
        "settings": dict(settings or {}),
        "apps": sorted(
            ({key: app.get(key) for key in SPEC_APP_KEYS} for app in apps),
            key=lambda app: app["name"],
        ),
    }


def has_pending_changes(
    draft: dict, deployed: Mapping[str, Any] | None, reveal: Callable[[Any], Any] | None = None
) -> bool:
    """Whether deploying `draft` (a canonical spec) would change what runs.

    Never deployed: pending as soon as there is an app to deploy. Secrets sealed apart are
    different tokens for the same value: when the specs differ, `reveal` (which opens sealed
    values) decides.
    """
    if deployed is None:
        return bool(draft["apps"])
    current = canonical_spec(deployed.get("settings"), deployed.get("apps") or [])
    if draft == current:
        return False
    return reveal is None or reveal(draft) != reveal(current)


# -- app status ------------------------------------------------------------------------------


class ContainerState(Protocol):
    """What the tracker observed of one container (a ContainerRecord row fits)."""

    state: str
    health: str | None
    exit_code: int | None
    oom_killed: bool


# The status of a deployed app whose containers nobody has observed yet.
_BY_DEPLOYMENT: dict[str, AppStatus] = {
    DeploymentStatus.QUEUED: AppStatus.DEPLOYING,
    DeploymentStatus.RUNNING: AppStatus.DEPLOYING,
    DeploymentStatus.SUCCEEDED: AppStatus.RUNNING,
    DeploymentStatus.FAILED: AppStatus.FAILED,
    DeploymentStatus.ROLLED_BACK: AppStatus.FAILED,
    DeploymentStatus.CANCELLED: AppStatus.STOPPED,
}


def app_status(
    deployed: bool,
    deployment_status: str | None,
    containers: Iterable[ContainerState] = (),
) -> AppStatus:
    """The status a user sees for one app.

    `deployed`: the app is part of the environment's current revision. `containers`: the
    tracker's records of the app's containers (Docker states, plus `crashloop` when the
    tracker gave up restarting one, `missing` when the engine lost one, `stopped` when a
    user's action stopped one); the worst of them wins. Without any record the status
    follows the current revision's deployment.
    """
    if not deployed:
        return AppStatus.PENDING
    observed = list(containers)
    if not observed:
        return _BY_DEPLOYMENT.get(deployment_status or "", AppStatus.PENDING)
    states = {c.state for c in observed}
    if "crashloop" in states:
        return AppStatus.CRASHLOOP
    ended = [c for c in observed if c.state in ("exited", "dead", "missing")]
    if any(c.exit_code or c.oom_killed or c.state in ("dead", "missing") for c in ended):
        return AppStatus.FAILED
    if ended or states & {"paused", "stopped"}:  # `stopped`: by a user's stop action
        return AppStatus.STOPPED
    if "restarting" in states or any(c.health == "unhealthy" for c in observed):
        return AppStatus.UNHEALTHY
    if states - {"running"} or any(c.health == "starting" for c in observed):
        return AppStatus.DEPLOYING
    if all(c.health == "healthy" for c in observed):
        return AppStatus.HEALTHY
    return AppStatus.RUNNING
