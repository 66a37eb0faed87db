"""An engine in memory: the `Engine` protocol over dicts, for tests of what drives an engine.

Containers run as soon as they start and stay running unless a test says otherwise
(`fail_start`, `exit_on_start`); every call that changes something is recorded in `calls`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

from packages.imageref import DEFAULT_POLICY, PullPolicy, RegistryPolicy
from workers.engine import (
    ENV_LABEL,
    ContainerSummary,
    CreatedContainer,
    Engine,
    EngineError,
    InUse,
    NotFound,
    ObservedContainer,
    PullAuth,
    VolumeCopy,
    observed,
)


@dataclass
class FakeContainer:
    id: str
    name: str
    params: dict[str, Any]
    files: Mapping[str, bytes]
    state: str = "created"
    started: int = 0  # how many times it was started
    networks: dict[str, list[str]] = field(default_factory=dict)  # network -> aliases

    @property
    def labels(self) -> Mapping[str, str]:
        return self.params.get("labels") or {}


class _Closed:
    """A stream with nothing in it."""

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def close(self) -> None:
        pass


class FakeEngine:
    """The `Engine` protocol in memory."""

    def __init__(self, images: Mapping[str, str] | None = None) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.networks: dict[str, dict[str, str]] = {}
        self.volumes: dict[str, dict[str, str]] = {}
        # What each volume holds, as a test writes it (path -> bytes); a snapshot holds a copy.
        self.volume_files: dict[str, dict[str, bytes]] = {}
        self.snapshot_images: set[str] = {"snapshot-helper"}  # helper images on the engine
        self.images: dict[str, str] = dict(images or {})  # reference -> id
        self.calls: list[tuple[str, str]] = []  # (operation, container name or object name)
        self.fail_start: set[str] = set()  # service names whose containers cannot start
        self.exit_on_start: set[str] = set()  # service names whose containers exit at once
        self.on_start: list[Any] = []  # callables run with each started container
        self._ids = itertools.count(1)

    # -- helpers for tests --------------------------------------------------------------------

    def running(self) -> list[FakeContainer]:
        return sorted(
            (c for c in self.containers.values() if c.state == "running"), key=lambda c: c.name
        )

    def _get(self, container_id: str) -> FakeContainer:
        found = self.containers.get(container_id)
        if found is None:
            raise NotFound(f"container {container_id[:12]} is gone")
        return found

    # -- discovery ------------------------------------------------------------------------------

    def list_containers(self, labels: Sequence[str]) -> list[ContainerSummary]:
        def carries(container: FakeContainer, label: str) -> bool:
            key, _, value = label.partition("=")
            return key in container.labels and (not value or container.labels[key] == value)

        return [
            ContainerSummary(c.id, c.name, dict(c.labels), c.state, c.state)
            for c in self.containers.values()
            if all(carries(c, label) for label in labels)
        ]

    def observe(self, env_id: str) -> list[ObservedContainer]:
        return [observed(c) for c in self.list_containers([f"{ENV_LABEL}={env_id}"])]

    def inspect(self, container_id: str) -> dict[str, Any] | None:
        container = self.containers.get(container_id)
        if container is None:
            return None
        networks = {
            n: {"Aliases": a, "IPAddress": "10.0.0.2"} for n, a in container.networks.items()
        }
        return {
            "Id": container.id,
            "Name": "/" + container.name,
            "State": {
                "Running": container.state == "running",
                "ExitCode": 0 if container.state != "exited" else 1,
                "StartedAt": f"start-{container.started}",
            },
            "NetworkSettings": {"Networks": networks},
        }

    # -- networks and volumes -------------------------------------------------------------------

    def ensure_network(
        self, name: str, labels: dict[str, str], pool: IPv4Network | None = None, prefix: int = 24
    ) -> None:
        self.networks.setdefault(name, dict(labels))

    def ensure_volume(self, env_id: str, app: str, volume: str, labels: dict[str, str]) -> str:
        name = f"{env_id}_{app}_{volume}"
        self.volumes.setdefault(name, dict(labels))
        return name

    def remove_environment_objects(self, env_id: str) -> None:
        for summary in self.list_containers([f"{ENV_LABEL}={env_id}"]):
            self.remove(summary.id)
        for objects in (self.networks, self.volumes):
            for name in [n for n, labels in objects.items() if labels.get(ENV_LABEL) == env_id]:
                del objects[name]

    def snapshot_volume(
        self, volume: str, snapshot: str, labels: Mapping[str, str], *, image: str, timeout: float
    ) -> VolumeCopy:
        if volume not in self.volumes:
            raise NotFound(f"volume {volume} is gone")
        self._helper(image)
        self.volumes.setdefault(snapshot, dict(labels))
        self.volume_files[snapshot] = dict(self.volume_files.get(volume, {}))
        self.calls.append(("snapshot", volume))
        return VolumeCopy(sum(map(len, self.volume_files[snapshot].values())), 0.01)

    def restore_volume(
        self, snapshot: str, volume: str, labels: Mapping[str, str], *, image: str, timeout: float
    ) -> VolumeCopy:
        if snapshot not in self.volumes:
            raise NotFound(f"the snapshot volume {snapshot} is gone")
        self._helper(image)
        self.volume_files[volume] = dict(self.volume_files.get(snapshot, {}))
        self.calls.append(("restore", volume))
        return VolumeCopy(sum(map(len, self.volume_files[volume].values())), 0.01)

    def remove_volume(self, name: str) -> None:
        if name not in self.volumes:
            raise NotFound(f"volume {name} is gone")
        del self.volumes[name]
        self.volume_files.pop(name, None)
        self.calls.append(("remove_volume", name))

    def _helper(self, image: str) -> None:
        if image not in self.snapshot_images:
            raise EngineError(f"the copy needs the image {image}, which is not on the engine")

    # -- images ---------------------------------------------------------------------------------

    def image_id(
        self,
        reference: str,
        *,
        pull: bool,
        registries: RegistryPolicy = DEFAULT_POLICY,
        policy: PullPolicy = PullPolicy.IF_NOT_PRESENT,
        auth: PullAuth | None = None,
    ) -> str:
        if reference not in self.images:
            raise EngineError(f"image {reference} is not on the engine")
        return self.images[reference]

    def image_named(self, name: str) -> str | None:
        return self.images.get(name)

    def load_image(self, body: Iterable[bytes], what: str) -> list[str]:
        raise EngineError(f"the engine could not load {what}: not in this fake")

    def image_tags(self, pattern: str) -> list[str]:
        prefix = pattern.split("*", 1)[0]
        return [name for name in self.images if name.startswith(prefix)]

    def remove_image(self, name: str) -> None:
        if name not in self.images:
            raise NotFound(f"image {name} is not on the engine")
        if any(c.params.get("image") == self.images[name] for c in self.containers.values()):
            raise InUse(f"image {name} is used")
        del self.images[name]

    def save_image(self, reference: str) -> Iterator[bytes]:
        raise NotFound(f"image {reference} is not on the engine")

    # -- containers -----------------------------------------------------------------------------

    def create(self, params: dict[str, Any], files: Mapping[str, bytes]) -> CreatedContainer:
        name = params["name"]
        if any(c.name == name for c in self.containers.values()):
            raise EngineError(f"cannot create {name}: the name is in use")
        container_id = f"{next(self._ids):064x}"
        networks = {
            network: list(endpoint.get("Aliases") or [])
            for network, endpoint in (params.get("networking_config") or {}).items()
        }
        self.containers[container_id] = FakeContainer(
            container_id, name, dict(params), dict(files), networks=networks
        )
        self.calls.append(("create", name))
        return CreatedContainer(container_id, name)

    def start(self, container_id: str) -> None:
        container = self._get(container_id)
        service = container.labels.get("io.catalog.service", "")
        if service in self.fail_start:
            raise EngineError(f"cannot start {container_id[:12]}: refused by the test")
        container.started += 1
        container.state = "exited" if service in self.exit_on_start else "running"
        self.calls.append(("start", container.name))
        for hook in self.on_start:
            hook(container)

    def stop(self, container_id: str, timeout: int = 10) -> None:
        container = self.containers.get(container_id)
        if container is not None:
            container.state = "exited"
            self.calls.append(("stop", container.name))

    def restart(self, container_id: str, timeout: int = 10) -> None:
        self.stop(container_id, timeout)
        self.start(container_id)

    def remove(self, container_id: str) -> None:
        container = self.containers.pop(container_id, None)
        if container is not None:
            self.calls.append(("remove", container.name))

    def join_as(self, container_id: str, network: str, aliases: list[str]) -> None:
        container = self._get(container_id)
        container.networks[network] = sorted({*container.networks.get(network, []), *aliases})
        self.calls.append(("join", container.name))

    def retire(self, container_id: str, network: str) -> None:
        container = self.containers.get(container_id)
        if container is not None:
            container.networks.pop(network, None)
        self.remove(container_id)

    # -- logs, execs and events -----------------------------------------------------------------

    def logs_tail(self, container_id: str, lines: int = 20) -> str:
        return ""

    def logs(self, container_id: str, *, tail: int) -> bytes:
        self._get(container_id)
        return b""

    def follow_logs(self, container_id: str, *, tail: int, until: int) -> _Closed:
        self._get(container_id)
        return _Closed()

    def exec_start(
        self, container_id: str, command: Sequence[str], environment: Mapping[str, str]
    ) -> tuple[str, _Closed]:
        self._get(container_id)
        return "exec-1", _Closed()

    def exec_exit_code(self, exec_id: str) -> int | None:
        return 0

    def exec_run(self, container_id: str, command: Sequence[str]) -> None:
        self._get(container_id)

    def events(self, *, label: str, actions: Sequence[str], since: str | None) -> _Closed:
        return _Closed()

    def close(self) -> None:
        pass


def _is_an_engine(fake: FakeEngine) -> Engine:
    """mypy checks here that the fake keeps to the protocol."""
    return fake
