"""The container engine as the workers and the API see it: the one door to it.

`Engine` is what an engine implements (`workers.engine.docker.DockerEngine` drives one Docker
engine); it returns plain data and raises `EngineError` and its children, never an engine
library's own objects or errors. The label names that find the catalog's objects live here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any, Protocol, TypeVar

from packages.container import LABEL_PREFIX
from packages.imageref import DEFAULT_POLICY, PullPolicy, RegistryPolicy

ENV_LABEL = LABEL_PREFIX + "env"
TENANT_LABEL = LABEL_PREFIX + "tenant"
APP_LABEL = LABEL_PREFIX + "app"
SERVICE_LABEL = LABEL_PREFIX + "service"
REPLICA_LABEL = LABEL_PREFIX + "replica"
REVISION_LABEL = LABEL_PREFIX + "revision"
FENCING_LABEL = LABEL_PREFIX + "fencing"
HASH_LABEL = LABEL_PREFIX + "config-hash"
VOLUME_LABEL = LABEL_PREFIX + "volume"  # a docker volume's package volume name
# On a volume snapshot (the package volume it copies) and on the helpers that copy volumes.
SNAPSHOT_LABEL = LABEL_PREFIX + "snapshot"

T_co = TypeVar("T_co", covariant=True)


class EngineError(Exception):
    """The engine refused or failed an operation; the message says which and why."""


class NotFound(EngineError):
    """The container, image, network or volume named is not on the engine."""


class InUse(EngineError):
    """The engine keeps the object: something still uses it (an image a container was made of)."""


@dataclass(frozen=True)
class PullAuth:
    """Whom a pull is made as: one tenant's username and password for the reference's
    registry, or, both empty (`ANONYMOUS`), nobody: never the engine client's own logins.
    The password stays out of the repr, so no log line or error shows it."""

    username: str = ""
    password: str = field(default="", repr=False)


ANONYMOUS = PullAuth()


class Stream(Protocol[T_co]):
    """What the engine sends until it ends or is closed: log chunks, exec output, events."""

    def __iter__(self) -> Iterator[T_co]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ContainerSummary:
    """One container of a listing: what the tracker, the deploy and the logs read of it."""

    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    state: str = ""  # created, running, exited, ...
    status: str = ""  # the engine's one line, e.g. `Up 3 s (healthy)`


@dataclass(frozen=True)
class CreatedContainer:
    """A container just created (not started)."""

    id: str
    name: str


@dataclass(frozen=True)
class ObservedContainer:
    """A container the engine shows, read from its io.catalog.* labels (None: label missing)."""

    id: str
    name: str
    app: str | None
    service: str | None
    replica: int | None
    revision: int | None
    fencing: int | None
    config_hash: str | None
    running: bool


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def observed(summary: ContainerSummary) -> ObservedContainer:
    """The catalog's view of a listed container: its slot, revision and fencing by label."""
    labels = summary.labels
    return ObservedContainer(
        id=summary.id,
        name=summary.name,
        app=labels.get(APP_LABEL),
        service=labels.get(SERVICE_LABEL),
        replica=_int(labels.get(REPLICA_LABEL)),
        revision=_int(labels.get(REVISION_LABEL)),
        fencing=_int(labels.get(FENCING_LABEL)),
        config_hash=labels.get(HASH_LABEL),
        running=summary.state == "running",
    )


@dataclass(frozen=True)
class VolumeCopy:
    """What copying one volume into another took: the copy's size (`du -sb`) and time."""

    size_bytes: int
    seconds: float


class Engine(Protocol):
    """Containers, networks, volumes, images, execs, logs and events of one engine."""

    # -- discovery --------------------------------------------------------------------------

    def list_containers(self, labels: Sequence[str]) -> list[ContainerSummary]:
        """Every container (running or not) carrying all of `labels` (`key` or `key=value`)."""
        ...

    def observe(self, env_id: str) -> list[ObservedContainer]:
        """The environment's containers, by its label."""
        ...

    def inspect(self, container_id: str) -> dict[str, Any] | None:
        """The container's details (State, NetworkSettings, ...); None when it is gone."""
        ...

    # -- networks and volumes ---------------------------------------------------------------

    def ensure_network(
        self, name: str, labels: dict[str, str], pool: IPv4Network | None = None, prefix: int = 24
    ) -> None: ...

    def ensure_volume(self, env_id: str, app: str, volume: str, labels: dict[str, str]) -> str: ...

    def remove_environment_objects(self, env_id: str) -> None: ...

    def snapshot_volume(
        self, volume: str, snapshot: str, labels: Mapping[str, str], *, image: str, timeout: float
    ) -> VolumeCopy:
        """Copy the volume `volume` into the volume `snapshot` (made with `labels`; a partial
        one of that name is replaced) by a helper container of `image` mounting the source
        read-only; the snapshot counts as complete only once the copy has ended."""
        ...

    def restore_volume(
        self, snapshot: str, volume: str, labels: Mapping[str, str], *, image: str, timeout: float
    ) -> VolumeCopy:
        """Empty `volume` and copy the complete snapshot `snapshot` back into it; NotFound
        (nothing touched) when the snapshot volume is gone, EngineError when it is incomplete
        or the copy fails."""
        ...

    def remove_volume(self, name: str) -> None:
        """Remove the volume `name`; NotFound when it is gone, InUse when a container has it."""
        ...

    # -- images -----------------------------------------------------------------------------

    def image_id(
        self,
        reference: str,
        *,
        pull: bool,
        registries: RegistryPolicy = DEFAULT_POLICY,
        policy: PullPolicy = PullPolicy.IF_NOT_PRESENT,
        auth: PullAuth | None = None,
    ) -> str:
        """The id of the image `reference` names exactly, pulled first as `policy` says (when
        absent; always; never) unless `pull` is False; as `auth` (None: as the engine client
        is configured to). A failed pull is an EngineError, even with the image present."""
        ...

    def image_named(self, name: str) -> str | None:
        """The id of the image tagged exactly `name`; None when there is none."""
        ...

    def load_image(self, body: Iterable[bytes], what: str) -> list[str]:
        """Load an image tarball; the names (or ids) the engine reports loading."""
        ...

    def image_tags(self, pattern: str) -> list[str]:
        """The tags of the images whose reference matches `pattern` (`registry/*/*`)."""
        ...

    def remove_image(self, name: str) -> None:
        """Remove the tag `name`; NotFound, or InUse when a container was created from it."""
        ...

    def save_image(self, reference: str) -> Iterator[bytes]:
        """`docker save` of the image `reference` names exactly; NotFound when it is absent."""
        ...

    # -- containers -------------------------------------------------------------------------

    def create(self, params: dict[str, Any], files: Mapping[str, bytes]) -> CreatedContainer:
        """Create (not start) a container from `container_params` and copy its files in."""
        ...

    def start(self, container_id: str) -> None: ...

    def stop(self, container_id: str, timeout: int = 10) -> None: ...

    def restart(self, container_id: str, timeout: int = 10) -> None: ...

    def remove(self, container_id: str) -> None: ...

    def join_as(self, container_id: str, network: str, aliases: list[str]) -> None: ...

    def retire(self, container_id: str, network: str) -> None: ...

    # -- logs, execs and events -------------------------------------------------------------

    def logs_tail(self, container_id: str, lines: int = 20) -> str:
        """The last lines of a container's log as text; "" when it cannot be read."""
        ...

    def logs(self, container_id: str, *, tail: int) -> bytes:
        """The last `tail` lines of the container's stdout and stderr; NotFound when gone."""
        ...

    def follow_logs(self, container_id: str, *, tail: int, until: int) -> Stream[bytes]:
        """The log from its last `tail` lines on, as it grows, until the time `until`."""
        ...

    def exec_start(
        self, container_id: str, command: Sequence[str], environment: Mapping[str, str]
    ) -> tuple[str, Stream[bytes]]:
        """Run a command in the container; its exec id and its output as it comes."""
        ...

    def exec_exit_code(self, exec_id: str) -> int | None: ...

    def exec_run(self, container_id: str, command: Sequence[str]) -> None:
        """Run a command in the container and wait for it to end."""
        ...

    def events(
        self, *, label: str, actions: Sequence[str], since: str | None
    ) -> Stream[dict[str, Any]]:
        """Container events of containers carrying `label`, from `since` (None: now) on."""
        ...

    def close(self) -> None:
        """Let go of the connection to the engine."""
        ...
