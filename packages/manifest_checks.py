"""Cross-field checks of a manifest: versions, references between services, archive members,
healthchecks, ports, volumes, dependency cycles and parameter migrations."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from packages.container import parse_bytes, parse_duration
from packages.graph import cycles
from packages.limits import MiB
from packages.migration_checks import check_migrations
from packages.parameter_schemas import check_parameter_schema
from packages.problems import Path, Problems, format_path, list_items, mapping_entries
from packages.versions import is_range, is_version

# The structure of a manifest (JSON Schema); these checks read its bundled-image pattern.
SCHEMA: dict = json.loads(resources.files("packages").joinpath("schema/manifest.json").read_text())

MEMORY_MIN, MEMORY_MAX = 4 * MiB, 64 * 1024 * MiB
_HEALTH_KINDS = ("command", "http", "tcp")

_BUNDLED_IMAGE = re.compile(SCHEMA["$defs"]["bundledImage"]["pattern"])


def check_semantics(doc: dict, found: Problems, members: frozenset[str] | None) -> None:
    """Every check that needs more than one field; `members` are the archive's, when known."""
    _check_parsed(("version",), doc.get("version"), _version_problem, found)
    for name, text in mapping_entries(doc.get("requires")):
        _check_parsed(("requires", name), text, _range_problem, found)
    for slot, binding in mapping_entries(doc.get("bindings")):
        if isinstance(binding, dict):
            _check_parsed(
                ("bindings", slot, "version"), binding.get("version"), _range_problem, found
            )
    if isinstance(doc.get("logo"), str):
        _check_member(("logo",), doc["logo"], "", members, found)
    if isinstance(doc.get("parameters"), dict):
        check_parameter_schema(doc["parameters"], ("parameters",), found)
    check_migrations(doc, found)  # after the parameter schema: it reads that schema's problems
    services = doc.get("services", {})
    if isinstance(services, dict):
        _check_service_count(doc.get("type"), services, found)
        for name, service in services.items():
            if isinstance(service, dict):
                _check_service(("services", name), service, services, members, found)
        _check_cycles(services, found)
    for name, action in mapping_entries(doc.get("actions")):
        if isinstance(action, dict):
            _check_action(("actions", name), action, services, found)


def _version_problem(text: str) -> str | None:
    return None if is_version(text) else f"{text!r} is not a semantic version like 1.2.3"


def _range_problem(text: str) -> str | None:
    return None if is_range(text) else f"{text!r} is not a version range like '>=1.2.0 <2.0.0'"


def _check_parsed(path: Path, value: Any, problem_of: Any, found: Problems) -> None:
    # Only strings: a wrong type is the schema's to report.
    if isinstance(value, str) and (problem := problem_of(value)):
        found.add(path, problem)


def _check_service_count(kind: Any, services: dict, found: Problems) -> None:
    if kind == "library" and services:
        found.add(("services",), "a library has no services")
    elif kind == "application" and not services:
        found.add(("services",), "an application needs at least one service")


def _check_member(
    path: Path, ref: str, prefix: str, members: frozenset[str] | None, found: Problems
) -> None:
    parts = ref.split("/")
    if not ref.startswith(prefix) or "\\" in ref or any(p in ("", ".", "..") for p in parts):
        where = f" under {prefix}" if prefix else ""
        found.add(path, f"must be a file of the package{where}, without . or .. parts")
    elif members is not None and ref not in members:
        found.add(path, f"{ref} is not in the package")


def _check_service(
    base: Path, service: dict, services: dict, members: frozenset[str] | None, found: Problems
) -> None:
    image = service.get("image")
    bundled = image.get("bundled") if isinstance(image, dict) else None
    if isinstance(bundled, str) and _BUNDLED_IMAGE.search(bundled):
        _check_member((*base, "image", "bundled"), bundled, "images/", members, found)
    if isinstance(image, dict) and "pull_policy" in service:
        found.add((*base, "pull_policy"), "a bundled image is loaded, never pulled")
    for target, ref in mapping_entries(service.get("files")):
        if isinstance(ref, str):
            _check_member((*base, "files", target), ref, "files/", members, found)
    if isinstance(service.get("healthcheck"), dict):
        _check_healthcheck((*base, "healthcheck"), service["healthcheck"], found)
    if isinstance(service.get("resources"), dict):
        _check_memory((*base, "resources", "memory"), service["resources"].get("memory"), found)
    _check_ports((*base, "ports"), service.get("ports"), found)
    _check_volumes((*base, "volumes"), service.get("volumes"), found)
    _check_data((*base, "data"), service, found)
    for i, other in list_items(service.get("depends_on")):
        if isinstance(other, str) and other not in services:
            found.add((*base, "depends_on", i), f"unknown service {other!r}")


def _check_data(path: Path, service: dict, found: Problems) -> None:
    """`data.migrates` asks for snapshots of the service's volumes: it needs one to copy."""
    data = service.get("data")
    volumes = [v for _, v in list_items(service.get("volumes")) if isinstance(v, dict)]
    migrates = isinstance(data, dict) and data.get("migrates") is True
    if migrates and all(v.get("read_only") for v in volumes):
        found.add((*path, "migrates"), "the service mounts no writable named volume")


def _check_healthcheck(path: Path, check: dict, found: Problems) -> None:
    kinds = [kind for kind in _HEALTH_KINDS if kind in check]
    if not kinds:
        found.add(path, "needs one of command, http or tcp")
    elif len(kinds) > 1:
        found.add(path, f"has {' and '.join(kinds)}: only one of command, http or tcp is allowed")
    for key in ("interval", "timeout"):
        text = check.get(key)
        if isinstance(text, str) and _is_zero(text):
            found.add((*path, key), "must be longer than 0s")


def _is_zero(text: str) -> bool:
    try:
        return parse_duration(text) == 0
    except ValueError:
        return False  # malformed: the schema says so


def _check_memory(path: Path, value: Any, found: Problems) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return
    try:
        size = value if isinstance(value, int) else parse_bytes(value)
    except ValueError:
        return  # malformed: the schema says so
    if not MEMORY_MIN <= size <= MEMORY_MAX:
        found.add(path, "must be between 4m and 64g")


def _check_ports(path: Path, ports: Any, found: Problems) -> None:
    seen: dict[tuple, int] = {}
    names: dict[str, int] = {}
    for i, port in list_items(ports):
        if not isinstance(port, dict) or not isinstance(port.get("container"), int):
            continue
        key = (port["container"], port.get("protocol", "tcp"))
        if key in seen:
            found.add((*path, i), f"the same port as {format_path(('ports', seen[key]))}")
        seen.setdefault(key, i)
        name = port.get("name")
        if isinstance(name, str) and name in names:
            found.add((*path, i, "name"), f"already names {format_path(('ports', names[name]))}")
        if isinstance(name, str):
            names.setdefault(name, i)


def _check_volumes(path: Path, volumes: Any, found: Problems) -> None:
    mounted: dict[str, int] = {}
    for i, volume in list_items(volumes):
        target = volume.get("path") if isinstance(volume, dict) else None
        if isinstance(target, str) and ":" in target:
            # The engine's volume syntax splits at ':': `/data:/etc` would mount on /etc.
            found.add((*path, i, "path"), "a volume path may not contain ':'")
        if isinstance(target, str) and target in mounted:
            where = format_path(("volumes", mounted[target]))
            found.add((*path, i, "path"), f"{target} is already mounted by {where}")
        if isinstance(target, str):
            mounted.setdefault(target, i)


def _check_cycles(services: dict, found: Problems) -> None:
    """One problem per dependency cycle (strongly connected group), on its first service."""
    graph = {
        name: sorted(
            {d for _, d in list_items(s.get("depends_on")) if isinstance(d, str) and d in services}
        )
        for name, s in services.items()
        if isinstance(s, dict)
    }
    for cycle in cycles(graph):
        found.add(("services", cycle[0], "depends_on"), f"dependency cycle: {' -> '.join(cycle)}")


def _check_action(base: Path, action: dict, services: Any, found: Problems) -> None:
    service = action.get("service")
    if isinstance(service, str) and isinstance(services, dict) and service not in services:
        found.add((*base, "service"), f"unknown service {service!r}")
    if isinstance(action.get("parameters"), dict):
        check_parameter_schema(action["parameters"], (*base, "parameters"), found)
