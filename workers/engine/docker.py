"""The Docker engine behind `Engine`: the only module that speaks docker-py (its public API).

docker-py's own errors stop here: they leave as `EngineError`, `NotFound` or `InUse`.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Network
from typing import Any

import docker
from docker.errors import APIError, DockerException
from docker.errors import NotFound as DockerNotFound
from docker.tls import TLSConfig
from docker.types import IPAMConfig, IPAMPool

from workers.engine import (
    APP_LABEL,
    ENV_LABEL,
    VOLUME_LABEL,
    ContainerSummary,
    CreatedContainer,
    EngineError,
    NotFound,
    ObservedContainer,
    Stream,
    observed,
)
from workers.engine.docker_images import DockerImages, explained
from workers.engine.docker_volumes import DockerVolumes
from workers.engine.names import legacy_volume_name, volume_name
from workers.engine.subnets import capacity, free_subnet, subnets_in_use

# Subnets an environment network tries when other networks take them as it is created.
NETWORK_ATTEMPTS = 5
# `container_params` keys that are the container's own configuration; the rest but `network`,
# `networking_config`, `ports` and `detach` are its host configuration.
_CREATE_KEYS = frozenset(
    {"image", "name", "hostname", "command", "entrypoint", "environment", "labels",
     "working_dir", "user", "healthcheck"}
)  # fmt: skip
_SPLIT_KEYS = frozenset({"network", "networking_config", "ports", "detach"})


def connect(
    url: str = "",
    *,
    ping: bool = True,
    ssh_client: bool = False,
    tls: tuple[str, str, str] | None = None,
) -> DockerEngine:
    """The engine at `url` ("": the environment's, DOCKER_HOST); ssh:// through the machine's
    own ssh client when `ssh_client`; `tls` the (ca, cert, key) files a tcp:// engine is
    verified with. Constructing the client asks the engine its version; `ping` asks again."""
    options: dict[str, Any] = {}
    if ssh_client:
        options["use_ssh_client"] = True
    if tls:
        ca, cert, key = tls
        options["tls"] = TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True)
    try:
        client = docker.DockerClient(base_url=url, **options) if url else docker.from_env()
        if ping:
            client.ping()
    except DockerException as exc:
        raise EngineError(f"the Docker engine does not answer: {exc}") from None
    return DockerEngine(client)


def create_args(api: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """`create_container` arguments of the low-level `api` for `container_params` output."""
    args = {key: value for key, value in params.items() if key in _CREATE_KEYS}
    host = {k: v for k, v in params.items() if k not in _CREATE_KEYS and k not in _SPLIT_KEYS}
    ports = params.get("ports") or {}
    if ports:
        host["port_bindings"] = ports
        args["ports"] = [tuple(port.split("/", 1)) for port in sorted(ports)]
    network = params.get("network")
    if network:
        host["network_mode"] = network
        endpoints = params.get("networking_config") or {}
        args["networking_config"] = (
            api.create_networking_config(endpoints) if network in endpoints else {network: None}
        )
    args["host_config"] = api.create_host_config(**host)
    return args


def _summary(found: Mapping[str, Any]) -> ContainerSummary:
    return ContainerSummary(
        id=found["Id"],
        name=(found.get("Names") or ["/?"])[0].lstrip("/"),
        labels=found.get("Labels") or {},
        state=found.get("State") or "",
        status=found.get("Status") or "",
    )


class DockerEngine(DockerImages, DockerVolumes):
    """One Docker engine, through one docker-py client."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    # -- discovery -------------------------------------------------------------

    def list_containers(self, labels: Sequence[str]) -> list[ContainerSummary]:
        try:
            found = self.client.api.containers(all=True, filters={"label": list(labels)})
        except DockerException as exc:
            raise EngineError(f"cannot list containers: {explained(exc)}") from None
        return [_summary(c) for c in found]

    def observe(self, env_id: str) -> list[ObservedContainer]:
        return [observed(c) for c in self.list_containers([f"{ENV_LABEL}={env_id}"])]

    def inspect(self, container_id: str) -> dict[str, Any] | None:
        try:
            return self.client.api.inspect_container(container_id)
        except DockerNotFound:
            return None
        except DockerException as exc:
            raise EngineError(f"cannot inspect {container_id[:12]}: {explained(exc)}") from None

    # -- networks and volumes ---------------------------------------------------

    def ensure_network(
        self, name: str, labels: dict[str, str], pool: IPv4Network | None = None, prefix: int = 24
    ) -> None:
        """The bridge network `name`, on the first free /`prefix` subnet of `pool` if it is new.

        Without a pool the engine's default address pools choose (they hold ~31 networks).
        """
        networks = self._networks()
        if any(network["Name"] == name for network in networks):
            return
        if pool is None:
            self._create_network(name, labels)
            return
        used = subnets_in_use(networks)
        for _ in range(NETWORK_ATTEMPTS):
            subnet = free_subnet(pool, prefix, used)
            if subnet is None:
                raise EngineError(
                    f"cannot create network {name}: CATALOG_NETWORK_POOL {pool} holds "
                    f"{capacity(pool, prefix)} networks of /{prefix} and none is free"
                )
            if self._create_network(name, labels, subnet):
                return
            # Taken since the listing (workers creating networks at once): list again, so
            # each retry skips every subnet taken meanwhile, not just this one.
            used = [*subnets_in_use(self._networks()), subnet]
        raise EngineError(
            f"cannot create network {name}: {NETWORK_ATTEMPTS} free subnets of {pool} "
            "were taken by other networks meanwhile"
        )

    def _networks(self) -> list[dict[str, Any]]:
        try:
            return self.client.api.networks()
        except DockerException as exc:
            raise EngineError(f"cannot list networks: {explained(exc)}") from None

    def _create_network(
        self, name: str, labels: dict[str, str], subnet: IPv4Network | None = None
    ) -> bool:
        """Create the network (or find it created meanwhile); False if `subnet` is taken."""
        ipam = None
        if subnet is not None:
            gateway = str(subnet.network_address + 1)
            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet), gateway=gateway)])
        try:  # the API call alone: the SDK's networks.create inspects the network after
            self.client.api.create_network(
                name, driver="bridge", labels=labels, check_duplicate=True, ipam=ipam
            )
        except APIError as exc:
            if exc.status_code == 403 and "overlaps" in str(exc.explanation):
                return False  # "Pool overlaps with other one on this address space"
            if exc.status_code != 409:  # 409: the network exists
                raise EngineError(f"cannot create network {name}: {exc.explanation}") from None
        return True

    def ensure_volume(self, env_id: str, app: str, volume: str, labels: dict[str, str]) -> str:
        """The docker volume of the app's package volume, made if there is none; its name.

        Found by its labels (environment, app, volume), so its name decides nothing. A
        volume of the old, ambiguous name that an older worker made for this very app
        (its app label says so, it has no volume label) keeps serving it: the data stays.
        """
        selector = [f"{ENV_LABEL}={env_id}", f"{APP_LABEL}={app}", f"{VOLUME_LABEL}={volume}"]
        try:
            found = self.client.api.volumes(filters={"label": selector}).get("Volumes") or []
            if found:
                return min(v["Name"] for v in found)
            legacy = self._legacy_volume(env_id, app, volume)
            if legacy is not None:
                return legacy
            name = volume_name(env_id, app, volume)
            try:
                self.client.api.inspect_volume(name)
            except DockerNotFound:
                self.client.api.create_volume(name, labels={**labels, VOLUME_LABEL: volume})
        except DockerException as exc:
            raise EngineError(f"cannot make volume {volume} of {app}: {explained(exc)}") from None
        return name

    def _legacy_volume(self, env_id: str, app: str, volume: str) -> str | None:
        name = legacy_volume_name(env_id, app, volume)
        try:
            labels = self.client.api.inspect_volume(name).get("Labels") or {}
        except DockerNotFound:
            return None
        mine = labels.get(ENV_LABEL) == env_id and labels.get(APP_LABEL) == app
        return name if mine and VOLUME_LABEL not in labels else None

    def remove_environment_objects(self, env_id: str) -> None:
        """Containers, networks and volumes carrying the environment's label."""
        selector = {"label": f"{ENV_LABEL}={env_id}"}
        for summary in self.list_containers([f"{ENV_LABEL}={env_id}"]):
            self.remove(summary.id)
        try:
            for network in self.client.api.networks(filters=selector):
                with contextlib.suppress(DockerNotFound):
                    self.client.api.remove_network(network["Id"])
            for volume in self.client.api.volumes(filters=selector).get("Volumes") or []:
                with contextlib.suppress(DockerNotFound):
                    self.client.api.remove_volume(volume["Name"], force=True)
        except DockerException as exc:
            raise EngineError(f"cannot remove environment {env_id}: {explained(exc)}") from None

    # -- containers -------------------------------------------------------------

    def create(self, params: dict[str, Any], files: Mapping[str, bytes]) -> CreatedContainer:
        """Create (not start) a container and copy its rendered files in.

        `params` are `packages.container.container_params`; no inspect follows the create (the
        SDK's does one, an engine round trip per container that nothing here reads).
        """
        name = params["name"]
        try:
            created = self.client.api.create_container(**create_args(self.client.api, params))
            if files:
                self.client.api.put_archive(created["Id"], "/", _tar_of(files))
        except APIError as exc:
            raise EngineError(f"cannot create {name}: {exc.explanation}") from None
        return CreatedContainer(id=created["Id"], name=name)

    def start(self, container_id: str) -> None:
        try:
            self.client.api.start(container_id)
        except APIError as exc:
            raise EngineError(f"cannot start {container_id[:12]}: {exc.explanation}") from None

    def stop(self, container_id: str, timeout: int = 10) -> None:
        try:
            self.client.api.stop(container_id, timeout=timeout)
        except DockerNotFound:
            pass
        except APIError as exc:
            raise EngineError(f"cannot stop {container_id[:12]}: {exc.explanation}") from None

    def restart(self, container_id: str, timeout: int = 10) -> None:
        try:
            self.client.api.restart(container_id, timeout=timeout)
        except DockerNotFound:
            raise NotFound(f"container {container_id[:12]} is gone") from None
        except APIError as exc:
            raise EngineError(f"cannot restart {container_id[:12]}: {exc.explanation}") from None

    def remove(self, container_id: str) -> None:
        try:
            self.client.api.remove_container(container_id, force=True, v=False)
        except DockerNotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # removal already in progress
                raise EngineError(f"cannot remove {container_id[:12]}: {exc.explanation}") from None

    def join_as(self, container_id: str, network: str, aliases: list[str]) -> None:
        """Reconnect a running container to `network` under `aliases` (its service's DNS name).

        A container started beside the old generation joins its service's name only once
        ready; before that, the name's round-robin would send requests to it.
        """
        info = self.inspect(container_id) or {}
        endpoint = ((info.get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}
        if set(aliases) <= set(endpoint.get("Aliases") or ()):
            return  # joined already (created with its name, or joined by an earlier attempt)
        try:
            self.client.api.disconnect_container_from_network(container_id, network)
            self.client.api.connect_container_to_network(container_id, network, aliases=aliases)
        except APIError as exc:
            raise EngineError(f"cannot attach {container_id[:12]} to {network}: {exc}") from None

    def retire(self, container_id: str, network: str) -> None:
        """Remove a serving container: off the network (and its DNS names) first, then killed.

        Killed while still on the network, its address would stay in the service's name
        until the engine cleans up, and requests resolving to it would be refused.
        """
        with contextlib.suppress(APIError):
            self.client.api.disconnect_container_from_network(container_id, network)
        self.remove(container_id)

    # -- logs, execs and events -------------------------------------------------

    def logs_tail(self, container_id: str, lines: int = 20) -> str:
        try:
            raw = self.client.api.logs(container_id, tail=lines, stdout=True, stderr=True)
        except APIError:
            return ""
        return raw.decode("utf-8", errors="replace").strip()

    def logs(self, container_id: str, *, tail: int) -> bytes:
        try:
            return self.client.api.logs(container_id, tail=tail, stdout=True, stderr=True)
        except DockerNotFound:
            raise NotFound(f"container {container_id[:12]} is gone") from None
        except APIError as exc:
            raise EngineError(f"cannot read the log of {container_id[:12]}: {exc}") from None

    def follow_logs(self, container_id: str, *, tail: int, until: int) -> Stream[bytes]:
        try:
            return self.client.api.logs(
                container_id, stream=True, follow=True, tail=tail, stdout=True, stderr=True,
                until=until,
            )  # fmt: skip
        except DockerNotFound:
            raise NotFound(f"container {container_id[:12]} is gone") from None
        except APIError as exc:
            raise EngineError(f"cannot follow the log of {container_id[:12]}: {exc}") from None

    def exec_start(
        self, container_id: str, command: Sequence[str], environment: Mapping[str, str]
    ) -> tuple[str, Stream[bytes]]:
        try:
            created = self.client.api.exec_create(
                container_id, list(command), environment=dict(environment), stdout=True,
                stderr=True,
            )  # fmt: skip
            return created["Id"], self.client.api.exec_start(created["Id"], stream=True)
        except DockerNotFound:
            raise NotFound(f"container {container_id[:12]} is gone") from None
        except APIError as exc:
            raise EngineError(f"cannot run a command in {container_id[:12]}: {exc}") from None

    def exec_exit_code(self, exec_id: str) -> int | None:
        try:
            return self.client.api.exec_inspect(exec_id)["ExitCode"]
        except APIError as exc:
            raise EngineError(f"cannot read how command {exec_id[:12]} ended: {exc}") from None

    def exec_run(self, container_id: str, command: Sequence[str]) -> None:
        try:
            created = self.client.api.exec_create(container_id, list(command))
            self.client.api.exec_start(created["Id"])
        except APIError as exc:
            raise EngineError(f"cannot run a command in {container_id[:12]}: {exc}") from None

    def events(
        self, *, label: str, actions: Sequence[str], since: str | None
    ) -> Stream[dict[str, Any]]:
        filters = {"type": "container", "label": [label], "event": list(actions)}
        try:
            # `since` as "seconds.nanoseconds" text: the engine takes it, the stubs know only
            # int and datetime (which would lose the nanoseconds).
            return self.client.events(decode=True, filters=filters, since=since)  # type: ignore[call-overload]
        except DockerException as exc:
            raise EngineError(f"cannot follow engine events: {explained(exc)}") from None

    def close(self) -> None:
        self.client.close()


def _tar_of(files: Mapping[str, bytes]) -> bytes:
    """A tar with each file at its absolute path (parents created), for put_archive at /."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        directories: set[str] = set()
        for path, data in sorted(files.items()):
            parts = path.strip("/").split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in directories:
                    directories.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo("/".join(parts))
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
