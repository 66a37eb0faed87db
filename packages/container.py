"""Turn a rendered service into Docker create arguments with the catalog's security defaults."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packages.characters import control_problem
from packages.limits import TIME_BOUNDS, KiB, MiB

LABEL_PREFIX = "io.catalog."
#: Healthcheck timings when the package leaves them out.
HEALTHCHECK_DEFAULTS = {"interval": "5s", "timeout": "3s", "retries": 3, "start_period": "0s"}
#: Below this a json-file log file would rotate on almost every line.
MIN_LOG_FILE_BYTES = 16 * KiB
#: Host ports below this are privileged and never handed to a package.
MIN_HOST_PORT = 1024
# Network modes that would leave the environment's own network.
_FORBIDDEN_NETWORKS = frozenset({"host", "bridge", "none", "default"})
# Bumped whenever what config_hash covers changes, so old and new hashes never collide.
# v2: engine names changed (workers/engine/names.py): every container is recreated once under its
# new name and DNS alias at the next deploy.
_HASH_SCHEME = "catalog-config-hash/v2"
# config_hash leaves these out: ordering only, or covered by an effective value (the image
# id stands for `image` and for what `pull_policy` brought), or how a deploy treats the
# container's volumes (`data`), not the container.
_UNHASHED_KEYS = frozenset({"depends_on", "image", "resources", "files", "pull_policy", "data"})

_BYTE_UNITS = {"": 1, "k": KiB, "m": MiB, "g": 1024 * MiB, "t": 1024 * 1024 * MiB}
_BYTES_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?\Z", re.ASCII)
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", re.ASCII)


@dataclass(frozen=True)
class RuntimeDefaults:
    """What the operator decides for every container: default limits and the log share."""

    memory: int = 256 * MiB
    cpus: float = 1.0
    pids: int = 256
    log_max_bytes: int = 10 * MiB  # one container's share of the host's log budget
    log_files: int = 2  # the share is split over this many rotated files
    keep_capabilities: tuple[str, ...] = (
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "SETGID",
        "SETUID",
        "NET_BIND_SERVICE",
        "KILL",
    )

    def __post_init__(self) -> None:
        if self.memory <= 0 or self.cpus <= 0 or self.pids <= 0:
            raise ValueError("default memory, cpus and pids must be positive")
        if self.log_files < 1 or self.log_max_bytes < self.log_files * MIN_LOG_FILE_BYTES:
            raise ValueError("the default log share is too small for its files")


@dataclass(frozen=True)
class ContainerTarget:
    """Where one container lives and what the executor calls it; decided outside the package."""

    name: str
    hostname: str
    image: str  # an image id, or a catalog-owned reference; never the package's own name
    network: str
    aliases: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    volumes: Mapping[str, str] = field(default_factory=dict)  # package name -> docker name
    host_ports: Mapping[tuple[int, str], int] = field(default_factory=dict)
    log_max_bytes: int | None = None  # this container's log share; None: the default


def parse_bytes(value: str | int) -> int:
    """Bytes from `256m`, `1g`, `512k`, `1.5g`, `100` or an int; units are binary."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative: {value}")
        return value
    match = _BYTES_RE.match(str(value).strip().lower())
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 512k, 256m, 1g)")
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2) or ""])


def parse_duration(value: str | int | float) -> float:
    """Seconds from `500ms`, `2s`, `1m`, `1h`, `1m30s`, or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value}")
        return float(value)
    text = str(value).strip().lower()
    parts = _DURATION_PART_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 2s, 1m30s)")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def _nanoseconds(value: str | int | float, at_most: float) -> int:
    return round(min(parse_duration(value), at_most) * 1_000_000_000)


def _healthcheck_timings(healthcheck: Mapping[str, Any]) -> dict[str, Any]:
    return {key: healthcheck.get(key, default) for key, default in HEALTHCHECK_DEFAULTS.items()}


def healthcheck_window(healthcheck: Mapping[str, Any]) -> float:
    """The start period plus `retries` rounds of one interval and one probe timeout: the
    longest a container can take to be declared healthy or unhealthy (uncapped)."""
    timings = _healthcheck_timings(healthcheck)
    per_round = parse_duration(timings["interval"]) + parse_duration(timings["timeout"])
    return parse_duration(timings["start_period"]) + per_round * int(timings["retries"])


def readiness_timeout(service: Mapping[str, Any], min_running: float = 0.0) -> float:
    """Seconds the executor waits for a new container of `service` to become ready.

    With a healthcheck: its window (`healthcheck_window`), never more than the
    readiness bound, even for a package stored before the bound was checked at
    upload. Without one, the container counts as ready once it has stayed running
    for `min_running` seconds, which is then the wait.
    """
    healthcheck = service.get("healthcheck")
    if not healthcheck:
        return min_running
    return min(healthcheck_window(healthcheck), TIME_BOUNDS.readiness_window)


def _engine_healthcheck(service: Mapping[str, Any]) -> dict[str, Any] | None:
    """The engine's healthcheck for a `command` check; http and tcp are probed by the worker."""
    healthcheck = service.get("healthcheck")
    if not healthcheck or "command" not in healthcheck:
        return None
    command = healthcheck["command"]
    test = ["CMD-SHELL", command] if isinstance(command, str) else ["CMD", *command]
    timings = _healthcheck_timings(healthcheck)
    return {
        "test": test,
        "interval": _nanoseconds(timings["interval"], TIME_BOUNDS.healthcheck_interval),
        "timeout": _nanoseconds(timings["timeout"], TIME_BOUNDS.healthcheck_interval),
        "retries": int(timings["retries"]),
        "start_period": _nanoseconds(timings["start_period"], TIME_BOUNDS.healthcheck_start_period),
    }


def _limits(service: Mapping[str, Any], defaults: RuntimeDefaults) -> dict[str, int]:
    """Memory, CPU and pids limits: the package's own, else the operator's defaults."""
    resources = service.get("resources") or {}
    memory = parse_bytes(resources.get("memory", defaults.memory))
    cpus = float(resources.get("cpus", defaults.cpus))
    pids = int(resources.get("pids", defaults.pids))
    if memory <= 0 or cpus <= 0 or pids <= 0:
        raise ValueError("memory, cpus and pids limits must be positive")
    return {"mem_limit": memory, "nano_cpus": round(cpus * 1_000_000_000), "pids_limit": pids}


def _log_config(share: int, files: int) -> dict[str, Any]:
    """A json-file driver whose rotated files together never exceed `share` bytes."""
    per_file = share // files
    if per_file < MIN_LOG_FILE_BYTES:
        raise ValueError(f"a log share of {share} bytes is too small for {files} files")
    return {"type": "json-file", "config": {"max-size": str(per_file), "max-file": str(files)}}


def _port_key(port: Mapping[str, Any]) -> tuple[int, str]:
    return int(port["container"]), str(port.get("protocol", "tcp"))


def _ports(service: Mapping[str, Any], host_ports: Mapping[tuple[int, str], int]) -> dict:
    """Published ports only; the others are reachable on the environment network anyway."""
    mapping: dict[str, int] = {}
    for port in service.get("ports") or ():
        if not port.get("publish", False):
            continue
        key = _port_key(port)
        if key not in host_ports:
            raise ValueError(f"no host port allocated for published port {key[0]}/{key[1]}")
        host_port = int(host_ports[key])
        if not MIN_HOST_PORT <= host_port <= 65535:
            raise ValueError(f"host port {host_port} is outside {MIN_HOST_PORT}-65535")
        mapping[f"{key[0]}/{key[1]}"] = host_port
    return mapping


def _mounts(service: Mapping[str, Any], docker_names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Named volumes only: a package volume maps to the docker volume the executor made.

    Structured mounts rather than `source:target:mode` bind strings, so no character of a
    path can turn into another field of the mount (`/data:/etc` is refused at upload too).
    Plain dicts in the engine API's mount shape; the engine adapter hands them on.
    """
    mounts = []
    for volume in service.get("volumes") or ():
        if volume["name"] not in docker_names:
            raise ValueError(f"no docker volume for package volume {volume['name']!r}")
        path = volume["path"]
        if not path.startswith("/") or ":" in path or control_problem(path, allow=frozenset()):
            raise ValueError(f"volume {volume['name']!r}: {path!r} is not a container path")
        mounts.append(
            {
                "Target": path,
                "Source": docker_names[volume["name"]],
                "Type": "volume",
                "ReadOnly": bool(volume.get("read_only", False)),
            }
        )
    return mounts


def _check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not key.startswith(LABEL_PREFIX):
            raise ValueError(f"label {key!r} is outside {LABEL_PREFIX}")
        if not isinstance(value, str):
            raise ValueError(f"label {key!r} must be a string")
    return dict(labels)


def _check_network(network: str) -> str:
    if not network or network in _FORBIDDEN_NETWORKS or network.startswith("container:"):
        raise ValueError(f"{network!r} is not an environment network")
    return network


def _aliases(target: ContainerTarget) -> list[str]:
    # The hostname is what templates hand to other services; it must resolve on the network.
    return list(dict.fromkeys((target.hostname, *target.aliases)))


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    environment = dict(service.get("environment") or {})
    for key, value in environment.items():
        if not isinstance(value, str):
            raise ValueError(f"environment {key!r} is not a string: render the service first")
        # A template can render a NUL ("\x00"), at which the engine and exec would cut the
        # value; the manifest's own text and the API's parameters hold none already.
        if "\0" in value:
            raise ValueError(f"environment variable {key!r} contains a NUL character (U+0000)")
    return environment


def container_params(
    service: Mapping[str, Any],
    target: ContainerTarget,
    defaults: RuntimeDefaults = RuntimeDefaults(),
) -> dict[str, Any]:
    """A container's create arguments, as `workers.engine.Engine.create` takes them (in the
    shape of the docker SDK's `client.containers.create(**params)`).

    `service` is a rendered service (see `packages.render.render_service`). The
    security options are fixed here, whatever the service says: no new
    privileges, every capability dropped except the operator's short list, no
    privileged mode, bounded memory (no extra swap), CPU, pids and logs, the
    environment network only, and no restart by the engine (the catalog
    decides restarts, with backoff and crash-loop detection).
    """
    limits = _limits(service, defaults)
    share = target.log_max_bytes if target.log_max_bytes is not None else defaults.log_max_bytes
    network = _check_network(target.network)
    return {
        "image": target.image,
        "name": target.name,
        "hostname": target.hostname,
        "command": service.get("command"),
        "entrypoint": service.get("entrypoint"),
        "environment": _environment(service),
        "labels": _check_labels(target.labels),
        "working_dir": service.get("working_dir"),
        "user": None if service.get("user") is None else str(service["user"]),
        "detach": True,
        "network": network,
        "networking_config": {network: {"Aliases": _aliases(target)}},
        "ports": _ports(service, target.host_ports),
        "mounts": _mounts(service, target.volumes),
        **limits,
        "memswap_limit": limits["mem_limit"],
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "cap_add": list(defaults.keep_capabilities),
        "privileged": False,
        "read_only": False,
        "log_config": _log_config(share, defaults.log_files),
        "restart_policy": {"Name": "no"},
        "healthcheck": _engine_healthcheck(service),
    }


def config_hash(
    service: Mapping[str, Any],
    *,
    image_id: str,
    files: Mapping[str, bytes] | None = None,
    host_ports: Mapping[tuple[int, str], int] | None = None,
    defaults: RuntimeDefaults = RuntimeDefaults(),
) -> str:
    """A sha256 (hex) of everything that, changed, needs a new container; stable across runs.

    Covered: the rendered service minus `depends_on` (ordering only), `image` and
    `pull_policy` (the resolved `image_id` stands for them) and `resources` (the effective
    memory/CPU/pids limits stand for it, so a changed operator default only
    touches services relying on it); each file's rendered bytes by container
    path; the host ports of published ports; the capabilities kept.
    Not covered: container name, labels (revision, fencing token, the hash
    itself), network and docker volume names (stable per environment), and the
    log share, which moves with the host's budget and needs no restart.
    """
    spec = {key: value for key, value in service.items() if key not in _UNHASHED_KEYS}
    document = {
        "scheme": _HASH_SCHEME,
        "service": spec,
        "image_id": image_id,
        "limits": _limits(service, defaults),
        "capabilities": sorted(defaults.keep_capabilities),
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in (files or {}).items()},
        "host_ports": {f"{p}/{proto}": hp for (p, proto), hp in (host_ports or {}).items()},
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
