"""The deploy plan: what to keep, start and remove, decided from plain values without Docker."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from packages.graph import Cycle, dependency_order
from workers.engine import ObservedContainer

Identity = tuple[str, str, int]
"""(app, service, replica): one container slot; never two containers for one."""


@dataclass(frozen=True)
class DesiredContainer:
    """One container the revision asks for."""

    app: str
    service: str
    replica: int
    config_hash: str
    publishes_ports: bool
    depends_on: frozenset[tuple[str, str]] = frozenset()
    # Its old container must stop before it starts: its volumes are snapshotted in between.
    snapshots_volumes: bool = False

    @property
    def identity(self) -> Identity:
        return (self.app, self.service, self.replica)


class Strategy(Enum):
    KEEP = "keep"
    START_BESIDE = "start-beside"  # no published port: the old one serves until the end
    # A published host port, or volumes snapshotted between: stop the old one, restart it on
    # failure.
    STOP_FIRST = "stop-first"
    REMOVE = "remove"


@dataclass(frozen=True)
class Step:
    strategy: Strategy
    app: str | None  # None only for a stray with unknown labels
    service: str | None
    replica: int | None
    container_id: str | None  # the observed container acted on or replaced; None for a new slot
    reason: str


@dataclass(frozen=True)
class Plan:
    keep: tuple[Step, ...] = ()
    start: tuple[Step, ...] = ()
    remove_now: tuple[Step, ...] = ()
    remove_after: tuple[Step, ...] = ()
    waves: tuple[tuple[Identity, ...], ...] = ()
    # Each started identity with the started identities it waits for (kept ones are ready).
    start_after: tuple[tuple[Identity, tuple[Identity, ...]], ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.start or self.remove_now or self.remove_after)

    def start_dependencies(self) -> dict[Identity, set[Identity]]:
        """The start graph in the shape `workers.deploy.parallel.run_in_waves` takes."""
        return {identity: set(deps) for identity, deps in self.start_after}


def plan(
    desired: Iterable[DesiredContainer],
    observed: Iterable[ObservedContainer],
    *,
    revision: int,
    fencing: int,
) -> Plan:
    """Compare what the revision asks for with what the engine shows.

    Raises ValueError for a desired identity listed twice or a dependency cycle.
    """
    wanted = _index_desired(desired)
    _check_acyclic(wanted.values())

    strays: list[ObservedContainer] = []
    groups: dict[Identity, list[ObservedContainer]] = defaultdict(list)
    for container in observed:
        identity = _identity_of(container)
        if identity is None:
            strays.append(container)
        else:
            groups[identity].append(container)

    keep: list[Step] = []
    start: list[Step] = []
    started: set[Identity] = set()
    remove_now = [_remove(c, "unknown labels") for c in strays]
    remove_after: list[Step] = []

    observed_apps = {identity[0] for identity in groups}
    observed_services = {identity[:2] for identity in groups}
    wanted_apps = {identity[0] for identity in wanted}
    wanted_services = {identity[:2] for identity in wanted}

    for identity in sorted(wanted.keys() | groups.keys()):
        want = wanted.get(identity)
        containers = groups.get(identity, [])
        fresh = [c for c in containers if not _is_stale_attempt(c, revision, fencing)]
        keepable = [
            c for c in containers if want and c.running and c.config_hash == want.config_hash
        ]

        chosen: ObservedContainer | None
        if want is None:
            chosen = max(fresh, key=_replace_rank, default=None)
            if chosen is not None:
                reason = _orphan_reason(identity, wanted_apps, wanted_services)
                remove_after.append(_remove(chosen, reason))
        elif keepable:
            chosen = max(keepable, key=_keep_rank)
            keep.append(_step(Strategy.KEEP, identity, chosen.id, "unchanged"))
        else:
            chosen = max(fresh, key=_replace_rank, default=None)
            stop_first = want.publishes_ports or want.snapshots_volumes
            strategy = Strategy.STOP_FIRST if stop_first else Strategy.START_BESIDE
            started.add(identity)
            if chosen is None:
                reason = _new_reason(identity, observed_apps, observed_services)
                start.append(_step(strategy, identity, None, reason))
            else:
                reason = _replace_reason(chosen, want)
                start.append(_step(strategy, identity, chosen.id, reason))
                remove_after.append(_remove(chosen, f"replaced: {reason}"))

        for container in containers:
            if container is not chosen:
                now, step = _second_container(container, chosen, revision, fencing)
                (remove_now if now else remove_after).append(step)

    start_after = _start_after(wanted, started)
    return Plan(
        keep=tuple(keep),
        start=tuple(start),
        remove_now=tuple(sorted(remove_now, key=_step_order)),
        remove_after=tuple(sorted(remove_after, key=_step_order)),
        waves=_waves(start_after),
        start_after=tuple(
            (identity, tuple(sorted(deps))) for identity, deps in sorted(start_after.items())
        ),
    )


def _index_desired(desired: Iterable[DesiredContainer]) -> dict[Identity, DesiredContainer]:
    wanted: dict[Identity, DesiredContainer] = {}
    for container in desired:
        if container.identity in wanted:
            raise ValueError(f"desired container listed twice: {_name(container.identity)}")
        wanted[container.identity] = container
    return wanted


def _check_acyclic(desired: Iterable[DesiredContainer]) -> None:
    """Raise ValueError naming a dependency cycle between (app, service) pairs."""
    graph: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for container in desired:
        graph[(container.app, container.service)] |= container.depends_on
    try:
        dependency_order({node: sorted(graph[node]) for node in sorted(graph)})
    except Cycle as exc:
        names = " -> ".join(f"{a}/{s}" for a, s in exc.nodes)
        raise ValueError(f"dependency cycle: {names}") from None


def _second_container(
    container: ObservedContainer, chosen: ObservedContainer | None, revision: int, fencing: int
) -> tuple[bool, Step]:
    """Another container for a slot that already has its chosen one: (remove now?, step)."""
    if _is_stale_attempt(container, revision, fencing):
        return True, _remove(container, f"stale attempt (fencing {container.fencing} < {fencing})")
    if not container.running:
        return True, _remove(container, "duplicate, not running")
    if chosen is not None and chosen.running and container.config_hash == chosen.config_hash:
        return True, _remove(container, "duplicate")
    # A running older generation keeps serving until every new container is ready.
    return False, _remove(container, "duplicate (old generation)")


def _identity_of(container: ObservedContainer) -> Identity | None:
    """The slot a container claims, or None when its labels are missing or garbled."""
    if not container.app or not container.service:
        return None
    if container.replica is None or container.replica < 0:
        return None
    return (container.app, container.service, container.replica)


def _is_stale_attempt(container: ObservedContainer, revision: int, fencing: int) -> bool:
    """Left by an earlier, killed attempt at this same revision."""
    return (
        container.revision == revision
        and container.fencing is not None
        and container.fencing < fencing
    )


def _keep_rank(container: ObservedContainer) -> tuple[int, int, str]:
    return (_or_minus_one(container.revision), _or_minus_one(container.fencing), container.id)


def _replace_rank(container: ObservedContainer) -> tuple[bool, int, int, str]:
    # The container to replace is the one that serves now: running first, then the newest.
    return (container.running, *_keep_rank(container))


def _or_minus_one(value: int | None) -> int:
    return -1 if value is None else value


def _orphan_reason(
    identity: Identity, wanted_apps: set[str], wanted_services: set[tuple[str, str]]
) -> str:
    if identity[0] not in wanted_apps:
        return "orphan: app removed"
    if identity[:2] not in wanted_services:
        return "orphan: service removed"
    return f"orphan: replica {identity[2]} scaled away"


def _replace_reason(container: ObservedContainer, want: DesiredContainer) -> str:
    changes = []
    if container.config_hash != want.config_hash:
        changes.append("config changed")
    if not container.running:
        changes.append("not running")
    return ", ".join(changes)


def _new_reason(
    identity: Identity, observed_apps: set[str], observed_services: set[tuple[str, str]]
) -> str:
    if identity[0] not in observed_apps:
        return "new app"
    if identity[:2] not in observed_services:
        return "new service"
    return f"new replica {identity[2]}"


def _start_after(
    wanted: Mapping[Identity, DesiredContainer], started: set[Identity]
) -> dict[Identity, set[Identity]]:
    """For each started container, the started containers it must wait for.

    A dependency on (app, service) means every replica of it; kept replicas are
    already ready and dependencies outside the revision are not ours to wait for.
    """
    replicas: dict[tuple[str, str], set[Identity]] = defaultdict(set)
    for identity in started:
        replicas[identity[:2]].add(identity)
    return {
        identity: set().union(*(replicas[dep] for dep in wanted[identity].depends_on))
        for identity in started
    }


def _waves(start_after: Mapping[Identity, set[Identity]]) -> tuple[tuple[Identity, ...], ...]:
    """Group the start graph by depth: each wave depends only on earlier waves."""
    depth: dict[Identity, int] = {}

    def depth_of(identity: Identity) -> int:
        # The graph is acyclic (checked on the desired spec), so this terminates.
        if identity not in depth:
            deps = start_after[identity]
            depth[identity] = 1 + max((depth_of(d) for d in deps), default=-1)
        return depth[identity]

    waves: dict[int, list[Identity]] = defaultdict(list)
    for identity in start_after:
        waves[depth_of(identity)].append(identity)
    return tuple(tuple(sorted(waves[level])) for level in sorted(waves))


def _step(strategy: Strategy, identity: Identity, container_id: str | None, reason: str) -> Step:
    app, service, replica = identity
    return Step(strategy, app, service, replica, container_id, reason)


def _remove(container: ObservedContainer, reason: str) -> Step:
    return Step(
        Strategy.REMOVE, container.app, container.service, container.replica, container.id, reason
    )


def _step_order(step: Step) -> tuple[str, str, int, str]:
    return (
        step.app or "",
        step.service or "",
        _or_minus_one(step.replica),
        step.container_id or "",
    )


def _name(identity: Identity) -> str:
    return f"{identity[0]}/{identity[1]}[{identity[2]}]"
