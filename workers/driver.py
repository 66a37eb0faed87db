"""The Docker engine as the deploy executor sees it: networks, volumes, images, containers."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Mapping
from ipaddress import IPv4Network

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container, _create_container_args
from docker.types import IPAMConfig, IPAMPool

from packages.container import LABEL_PREFIX
from packages.imageref import (
    DEFAULT_POLICY,
    Reference,
    RegistryPolicy,
    carries,
    parse,
    reference_problem,
)
from workers.names import legacy_volume_name, volume_name
from workers.planner import ObservedContainer
from workers.subnets import capacity, free_subnet, subnets_in_use

ENV_LABEL = LABEL_PREFIX + "env"
TENANT_LABEL = LABEL_PREFIX + "tenant"
APP_LABEL = LABEL_PREFIX + "app"
SERVICE_LABEL = LABEL_PREFIX + "service"
REPLICA_LABEL = LABEL_PREFIX + "replica"
REVISION_LABEL = LABEL_PREFIX + "revision"
FENCING_LABEL = LABEL_PREFIX + "fencing"
HASH_LABEL = LABEL_PREFIX + "config-hash"
VOLUME_LABEL = LABEL_PREFIX + "volume"  # a docker volume's package volume name
# Subnets an environment network tries when other networks take them as it is created.
NETWORK_ATTEMPTS = 5


class EngineError(Exception):
    """The engine refused or failed an operation; the message says which and why."""


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def connect(url: str = "") -> docker.DockerClient:
    client = docker.DockerClient(base_url=url) if url else docker.from_env()
    client.ping()
    return client


class Driver:
    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    # -- discovery -------------------------------------------------------------

    def observe(self, env_id: str) -> list[ObservedContainer]:
        found = self.client.api.containers(all=True, filters={"label": f"{ENV_LABEL}={env_id}"})
        return [self._observed(c) for c in found]

    @staticmethod
    def _observed(summary: Mapping) -> ObservedContainer:
        labels = summary.get("Labels") or {}
        return ObservedContainer(
            id=summary["Id"],
            name=(summary.get("Names") or ["/?"])[0].lstrip("/"),
            app=labels.get(APP_LABEL),
            service=labels.get(SERVICE_LABEL),
            replica=_int(labels.get(REPLICA_LABEL)),
            revision=_int(labels.get(REVISION_LABEL)),
            fencing=_int(labels.get(FENCING_LABEL)),
            config_hash=labels.get(HASH_LABEL),
            running=summary.get("State") == "running",
        )

    # -- networks and volumes ---------------------------------------------------

    def ensure_network(
        self, name: str, labels: dict[str, str], pool: IPv4Network | None = None, prefix: int = 24
    ) -> None:
        """The bridge network `name`, on the first free /`prefix` subnet of `pool` if it is new.

        Without a pool the engine's default address pools choose (they hold ~31 networks).
        """
        networks = self.client.api.networks()
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
            used = [*subnets_in_use(self.client.api.networks()), subnet]
        raise EngineError(
            f"cannot create network {name}: {NETWORK_ATTEMPTS} free subnets of {pool} "
            "were taken by other networks meanwhile"
        )

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
        found = self.client.api.volumes(filters={"label": selector}).get("Volumes") or []
        if found:
            return min(v["Name"] for v in found)
        legacy = self._legacy_volume(env_id, app, volume)
        if legacy is not None:
            return legacy
        name = volume_name(env_id, app, volume)
        try:
            self.client.volumes.get(name)
        except NotFound:
            self.client.volumes.create(name, labels={**labels, VOLUME_LABEL: volume})
        return name

    def _legacy_volume(self, env_id: str, app: str, volume: str) -> str | None:
        name = legacy_volume_name(env_id, app, volume)
        try:
            labels = self.client.volumes.get(name).attrs.get("Labels") or {}
        except NotFound:
            return None
        mine = labels.get(ENV_LABEL) == env_id and labels.get(APP_LABEL) == app
        return name if mine and VOLUME_LABEL not in labels else None

    def remove_environment_objects(self, env_id: str) -> None:
        """Containers, networks and volumes carrying the environment's label."""
        selector = {"label": f"{ENV_LABEL}={env_id}"}
        for summary in self.client.api.containers(all=True, filters=selector):
            self.remove(summary["Id"])
        for network in self.client.networks.list(filters=selector):
            with contextlib.suppress(NotFound):
                network.remove()
        for volume in self.client.volumes.list(filters=selector):
            with contextlib.suppress(NotFound):
                volume.remove(force=True)

    # -- images -----------------------------------------------------------------

    def image_id(
        self, reference: str, *, pull: bool, registries: RegistryPolicy = DEFAULT_POLICY
    ) -> str:
        """The id of the image `reference` names, pulled first when absent and pulling is
        allowed: exactly that image (its tag written out, and carried by the image found),
        never one the engine's lookup would take for it, such as an id or an id's prefix."""
        problem = reference_problem(reference, registries)
        if problem:  # checked at upload too; this holds for packages stored before, or
            raise EngineError(f"image {reference} {problem}")  # a narrowed allowlist
        ref = parse(reference)
        found = self._exact_image(ref)
        if found is not None:
            return found
        if not pull:
            raise EngineError(f"image {reference} is not on the engine")
        try:
            self.client.images.pull(ref.repository, tag=ref.digest or ref.tag or "latest")
        except (APIError, ImageNotFound) as exc:
            raise EngineError(f"image {reference} could not be pulled: {exc}") from None
        found = self._exact_image(ref)
        if found is None:
            raise EngineError(f"image {reference} was pulled but is not on the engine")
        return found

    def _exact_image(self, ref: Reference) -> str | None:
        try:
            attrs = self.client.api.inspect_image(ref.exact)
        except ImageNotFound:
            return None
        except APIError as exc:
            raise EngineError(f"image {ref.exact}: {exc.explanation}") from None
        return attrs["Id"] if carries(attrs, ref) else None

    # -- containers -------------------------------------------------------------

    def create(self, params: dict, files: Mapping[str, bytes]) -> Container:
        """Create (not start) a container and copy its rendered files in.

        `params` are `client.containers.create` arguments, converted the way it converts
        them; but no inspect follows the create (the SDK's does one, an engine round trip per
        container that nothing here reads): the model carries only the id and the name.
        """
        name = params["name"]
        kwargs = {k: v for k, v in params.items() if k != "detach"}
        kwargs["version"] = self.client.api._version
        try:
            created = self.client.api.create_container(**_create_container_args(kwargs))
        except APIError as exc:
            raise EngineError(f"cannot create {name}: {exc.explanation}") from None
        container = self.client.containers.prepare_model({"Id": created["Id"], "Name": "/" + name})
        if files:
            container.put_archive("/", _tar_of(files))
        return container

    def start(self, container_id: str) -> None:
        try:
            self.client.api.start(container_id)
        except APIError as exc:
            raise EngineError(f"cannot start {container_id[:12]}: {exc.explanation}") from None

    def stop(self, container_id: str, timeout: int = 10) -> None:
        with contextlib.suppress(NotFound):
            self.client.api.stop(container_id, timeout=timeout)

    def remove(self, container_id: str) -> None:
        try:
            self.client.api.remove_container(container_id, force=True, v=False)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # removal already in progress
                raise

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
            found = self.client.networks.get(network)
            found.disconnect(container_id)
            found.connect(container_id, aliases=aliases)
        except APIError as exc:
            raise EngineError(f"cannot attach {container_id[:12]} to {network}: {exc}") from None

    def retire(self, container_id: str, network: str) -> None:
        """Remove a serving container: off the network (and its DNS names) first, then killed.

        Killed while still on the network, its address would stay in the service's name
        until the engine cleans up, and requests resolving to it would be refused.
        """
        with contextlib.suppress(NotFound, APIError):
            self.client.api.disconnect_container_from_network(container_id, network)
        self.remove(container_id)

    def inspect(self, container_id: str) -> dict | None:
        try:
            return self.client.api.inspect_container(container_id)
        except NotFound:
            return None

    def logs_tail(self, container_id: str, lines: int = 20) -> str:
        try:
            raw = self.client.api.logs(container_id, tail=lines, stdout=True, stderr=True)
        except (NotFound, APIError):
            return ""
        return raw.decode("utf-8", errors="replace").strip()


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
