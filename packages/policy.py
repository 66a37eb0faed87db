"""The container policy of a manifest: what would weaken isolation is refused with a reason.

Also the shape every manifest must have before the schema sees it: string keys, finite
numbers, no characters a package may not hold.
"""

from __future__ import annotations

import math
from typing import Any

from packages.characters import text_problem
from packages.problems import Path, Problems, list_items, mapping_entries

_HOST_NAMESPACES = "host namespaces are not allowed"
_OWN_NETWORK = "; containers join only their environment's network"
_USE_RESOURCES = "limits are set with resources: {memory, cpus, pids}"
_HOST_PORTS = (
    "host ports are allocated by the catalog from its configured range"
    " (ports below 1024 are never allowed); declare {container: <port>, publish: true}"
)
_BIND_MOUNTS = "bind mounts of host paths are not allowed; use a named volume {name, path}"
_VOLUME_FORM = "volumes are written as {name: <volume>, path: <absolute container path>}"
_PORT_FORM = "ports are written as {container: <port>, protocol: tcp|udp, publish: true|false}"

# Service keys refused with a specific reason: the container policy of ARCHITECTURE §4.
SERVICE_POLICY: dict[str, str] = {
    "privileged": "privileged mode is not allowed",
    "network_mode": _HOST_NAMESPACES + _OWN_NETWORK,
    "network": _HOST_NAMESPACES + _OWN_NETWORK,
    "networks": "networks are managed by the catalog" + _OWN_NETWORK,
    "pid": _HOST_NAMESPACES + " (pid)",
    "ipc": _HOST_NAMESPACES + " (ipc)",
    "uts": _HOST_NAMESPACES + " (uts)",
    "userns_mode": _HOST_NAMESPACES + " (userns_mode)",
    "cgroup": _HOST_NAMESPACES + " (cgroup)",
    "cgroup_parent": "cgroups are managed by the catalog",
    "cap_add": "adding capabilities is not allowed",
    "cap_drop": "capabilities are managed by the catalog: all are dropped",
    "devices": "host devices are not allowed",
    "device_cgroup_rules": "host devices are not allowed",
    "gpus": "host devices are not allowed",
    "sysctls": "sysctls are not allowed",
    "security_opt": "security options are managed by the catalog (no-new-privileges is set)",
    "restart": "restarts are managed by the catalog",
    "labels": "labels are owned by the catalog",
    "container_name": "container names are assigned by the catalog",
    "hostname": "hostnames are assigned by the catalog (services.<name>.hostname in templates)",
    "volumes_from": "sharing another container's volumes is not allowed",
    "logging": "logging is managed by the catalog",
    "build": "the catalog does not build images: use image, or bundle one under images/",
    "deploy": _USE_RESOURCES,
    "mem_limit": _USE_RESOURCES,
    "cpus": _USE_RESOURCES,
    "pids_limit": _USE_RESOURCES,
}
# Keys through which a volume or port entry asks for the host.
_BIND_KEYS = ("source", "src", "host", "host_path", "hostPath", "bind")
_HOST_PORT_KEYS = ("host", "published", "host_port", "hostPort", "host_ip")


def json_shaped(value: Any, path: Path, found: Problems) -> Any:
    """A copy keeping only string keys: YAML allows `80:` or `yes:` as keys, JSON does not.

    Every key and string is checked for characters no package may hold: a key holds no
    control at all, a value no NUL or control but tab and line breaks, neither a
    bidirectional control (see packages.characters).
    """
    if isinstance(value, dict):
        shaped = {}
        for key, item in value.items():
            if not isinstance(key, str):
                found.add((*path, str(key)), "keys must be strings: quote this one")
            elif problem := text_problem(key, allow=frozenset()):
                found.add((*path, key), f"the key {problem}")  # quoted, escaped
            else:
                shaped[key] = json_shaped(item, (*path, key), found)
        return shaped
    if isinstance(value, str) and (problem := text_problem(value)):
        found.add(path, problem)
    if isinstance(value, list):
        return [json_shaped(item, (*path, i), found) for i, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        found.add(path, "must be a finite number")
    return value


def check_policy(doc: dict, found: Problems) -> None:
    """Refuse what would weaken isolation, with a reason rather than "unknown key"."""
    for name, service in mapping_entries(doc.get("services")):
        if not isinstance(service, dict):
            continue
        base = ("services", name)
        for key in sorted(service.keys() & SERVICE_POLICY.keys()):
            found.refuse((*base, key), SERVICE_POLICY[key])
        for i, volume in list_items(service.get("volumes")):
            _check_volume_policy((*base, "volumes", i), volume, found)
        for i, port in list_items(service.get("ports")):
            _check_port_policy((*base, "ports", i), port, found)


def _looks_like_host_path(value: Any) -> bool:
    return isinstance(value, str) and (
        value.startswith((".", "~")) or "/" in value or "\\" in value
    )


def _check_volume_policy(path: Path, volume: Any, found: Problems) -> None:
    # Compose habits ("/:/host", {source, target}) are refused once per entry, not per key.
    if isinstance(volume, str):
        source, colon, _ = volume.partition(":")
        is_bind = (colon and _looks_like_host_path(source)) or "\\" in volume
        found.refuse(path, _BIND_MOUNTS if is_bind else _VOLUME_FORM)
    elif isinstance(volume, dict):
        binds = volume.get("type") == "bind"
        for key in _BIND_KEYS:
            if key in volume and (binds or _looks_like_host_path(volume[key])):
                found.refuse((*path, key), _BIND_MOUNTS, cover=path)
                return
        if binds:
            found.refuse((*path, "type"), _BIND_MOUNTS, cover=path)
        elif volume.keys() & {"source", "target"}:
            found.refuse(path, _VOLUME_FORM)


def _check_port_policy(path: Path, port: Any, found: Problems) -> None:
    if isinstance(port, str) and ":" in port:
        found.refuse(path, _HOST_PORTS)
    elif isinstance(port, (str, int)) and not isinstance(port, bool):
        found.refuse(path, _PORT_FORM)
    elif isinstance(port, dict):
        for key in _HOST_PORT_KEYS:
            if key in port:
                found.refuse((*path, key), _HOST_PORTS, cover=path)
                return
        if "target" in port:
            found.refuse(path, _PORT_FORM)
