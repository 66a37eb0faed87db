"""The `catalog/v1` manifest: structure (JSON Schema), container policy and cross-field checks.

The structure lives in `packages/schema/manifest.json`; this module adds what a schema says
badly: the container policy (specific refusals for privileged mode, host namespaces, binds...),
semver and ranges, references between services, members of the archive, parameter schemas.
Every problem is collected, never just the first, one per mistake, sorted by path.

Images: a service's `image` is either a registry reference (`nginx:1.25`,
`registry.example.com:5000/org/app@sha256:<hex>`) or a tarball bundled in the package:
`image: {bundled: images/app.tar, tag: "app:1.0"}`, where `bundled` is a `docker save` tarball
under `images/` and `tag` picks the image inside it (it may be left out when the tarball holds
exactly one). Image strings are not templates.

Commands: `command`, `entrypoint` and a healthcheck's `command` are a list of strings or a
string (split like a shell would, as Docker does; a healthcheck string runs in the shell).
Action commands are lists.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from packages.bounds import manifest_bounds
from packages.characters import text_problem
from packages.container import parse_bytes, parse_duration
from packages.errors import ManifestValidationError, Problem
from packages.imageref import image_problems
from packages.limits import DEFAULT_LIMITS, Limits, MiB
from packages.patterns import ParameterValidator, additional_keys, pattern_problem
from packages.secrets import schema_problems as secret_schema_problems
from packages.secrets import subschemas
from packages.versions import is_range, is_version
from packages.yamlload import load_yaml

FORMAT = "catalog/v1"
SCHEMA: dict = json.loads(resources.files("packages").joinpath("schema/manifest.json").read_text())
_STRUCTURE = Draft202012Validator(SCHEMA)
_PARAMETERS_URI = "urn:container-catalog:parameters"
_META = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)

Path = tuple[str | int, ...]

MEMORY_MIN, MEMORY_MAX = 4 * MiB, 64 * 1024 * MiB
_HEALTH_KINDS = ("command", "http", "tcp")

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


def _key(name: str) -> Any:
    return property(lambda self: self.raw[name], doc=f"`{name}` of the validated manifest")


@dataclass(frozen=True)
class Manifest:
    """A validated manifest; `raw` has the defaults filled (see `_fill_defaults`)."""

    raw: dict

    name = _key("name")
    version = _key("version")
    type = _key("type")  # "application" or "library"
    title = _key("title")
    description = _key("description")
    tags = _key("tags")
    requires = _key("requires")
    parameters = _key("parameters")
    bindings = _key("bindings")
    services = _key("services")
    outputs = _key("outputs")
    actions = _key("actions")

    @property
    def secret_parameters(self) -> frozenset[str]:
        """Dotted names of parameters marked `x-secret: true`, nested ones included."""
        return frozenset(_secret_names(self.parameters, ""))


def parse_manifest(
    data: bytes, *, members: Collection[str] | None = None, limits: Limits = DEFAULT_LIMITS
) -> Manifest:
    """Read `manifest.yaml` bytes safely and validate them; raises ManifestError or a subclass."""
    return validate_manifest(load_yaml(data, limits), members=members, limits=limits)


def validate_manifest(
    doc: Any, *, members: Collection[str] | None = None, limits: Limits = DEFAULT_LIMITS
) -> Manifest:
    """Check a loaded manifest; ManifestValidationError lists every problem found.

    `members` are the archive's file names, when known: files, images and logo must be there.
    """
    if not isinstance(doc, dict):
        raise ManifestValidationError("the manifest must be a mapping of keys to values")
    found = _Problems()
    doc = _json_shaped(doc, (), found)
    _check_policy(doc, found)
    for error in _STRUCTURE.iter_errors(doc):
        found.add_error(error, ())
    _check_semantics(doc, found, None if members is None else frozenset(members))
    for path, message in manifest_bounds(doc, limits):
        found.add(path, message)
    for path, message in image_problems(doc, limits.registries):
        found.add(path, message)
    if found:
        raise ManifestValidationError(found.sorted())
    return Manifest(_fill_defaults(copy.deepcopy(doc)))


def validate_parameters(schema: dict, values: dict) -> dict:
    """`values` with the defaults of `schema` applied, or ManifestValidationError.

    Defaults are applied recursively through `properties`; a missing object property with
    defaults inside (and nothing required without one) is created. Messages never repeat the
    values, which may be secrets.
    """
    if not isinstance(values, dict):
        raise ManifestValidationError(
            "must be a mapping of parameter names to values", "parameters"
        )
    filled = _apply_defaults(schema, copy.deepcopy(values))
    found = _Problems(echo=False)
    for where, message in _pattern_problems(schema):  # a schema stored before RE2 was required
        found.add(("parameters",), f"the schema cannot be used: {format_path(where)} {message}")
    if found:
        raise ManifestValidationError(found.sorted())
    validator = ParameterValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    try:
        for error in validator.iter_errors(filled):
            found.add_error(error, ("parameters",))
    except (Unresolvable, re.error) as exc:
        found.add(("parameters",), f"the parameter schema cannot be used: {exc}")
    if found:
        raise ManifestValidationError(found.sorted())
    return filled


# --- collecting problems -------------------------------------------------------------------


class _Problems:
    """Problems keyed by path; entries under a `covered` path are already explained."""

    def __init__(self, *, echo: bool = True) -> None:
        self.echo = echo  # whether messages may quote the offending value
        self.items: set[tuple[Path, str]] = set()
        self.covered: set[Path] = set()

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, path: Path, message: str) -> None:
        if not any(path[: len(c)] == c for c in self.covered):
            self.items.add((path, message))

    def refuse(self, path: Path, message: str, *, cover: Path | None = None) -> None:
        """A policy refusal: it hides what the schema would also say about `cover`."""
        self.add(path, message)
        self.covered.add(path if cover is None else cover)

    def add_error(self, error: ValidationError, prefix: Path) -> None:
        path = prefix + tuple(error.absolute_path)
        if error.validator == "required":
            for name in error.validator_value:
                if isinstance(error.instance, dict) and name not in error.instance:
                    self.add((*path, name), "is required")
        elif error.validator == "additionalProperties" and error.validator_value is False:
            for key in _extra_keys(error.instance, error.schema):
                self.add((*path, key), "unknown key")
        elif _is_property_name_error(error):
            self.add((*path, error.instance), _message(error, self.echo))
        else:
            self.add(path, _message(error, self.echo))

    def sorted(self) -> list[Problem]:
        ordered = sorted(self.items, key=lambda item: (_path_key(item[0]), item[1]))
        return [Problem(format_path(path), message) for path, message in ordered]


def format_path(path: Iterable[str | int]) -> str:
    """`("services", "web", "ports", 0)` -> `services.web.ports[0]`; odd keys are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def _path_key(path: Path) -> tuple:
    # Natural order: ports[2] before ports[10], and an object's problems stay together.
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in path)


def _extra_keys(instance: Any, schema: dict) -> list[str]:
    return additional_keys(instance, schema) if isinstance(instance, dict) else []


def _is_property_name_error(error: ValidationError) -> bool:
    # propertyNames checks a key without extending the path; find the keyword itself,
    # skipping names of properties (a parameter may well be called "propertyNames").
    after_name_map = False
    for part in error.schema_path:
        if after_name_map:
            after_name_map = False
        elif part == "propertyNames":
            return True
        else:
            after_name_map = part in ("properties", "patternProperties", "$defs")
    return False


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}
_MESSAGES = {
    "pattern": "must match the pattern {}",
    "format": "must be a valid {}",
    "minLength": "must be at least {} characters long",
    "maxLength": "must be at most {} characters long",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "exclusiveMinimum": "must be greater than {}",
    "exclusiveMaximum": "must be less than {}",
    "multipleOf": "must be a multiple of {}",
    "minItems": "must have at least {} items",
    "maxItems": "must have at most {} items",
    "uniqueItems": "must not contain duplicates",
    "minProperties": "must have at least {} keys",
    "maxProperties": "must have at most {} keys",
}


def _message(error: ValidationError, echo: bool) -> str:
    """A readable message for one schema error; quotes the offending value only when `echo`."""
    kind, value = error.validator, error.validator_value
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if kind in ("pattern", "format") and custom:
        return custom
    if kind == "type":
        words = [_TYPE_WORDS.get(t, t) for t in ([value] if isinstance(value, str) else value)]
        return "must be " + ", ".join(words[:-1]) + (" or " if len(words) > 1 else "") + words[-1]
    if kind == "enum":
        return "must be one of: " + ", ".join(json.dumps(v) for v in value)
    if kind == "const":
        return f"must be {json.dumps(value)}"
    if kind in ("minLength", "minItems") and value == 1:
        return "must not be empty"
    if kind in _MESSAGES:
        return _MESSAGES[kind].format(value)
    if kind is None:  # a `false` schema
        return "is not allowed"
    return error.message if echo else f"does not satisfy the schema's {kind!r} rule"


# --- shape and container policy ------------------------------------------------------------


def _json_shaped(value: Any, path: Path, found: _Problems) -> Any:
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
                shaped[key] = _json_shaped(item, (*path, key), found)
        return shaped
    if isinstance(value, str) and (problem := text_problem(value)):
        found.add(path, problem)
    if isinstance(value, list):
        return [_json_shaped(item, (*path, i), found) for i, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        found.add(path, "must be a finite number")
    return value


def _items(value: Any) -> Iterator[tuple[int, Any]]:
    return enumerate(value) if isinstance(value, list) else iter(())


def _entries(value: Any) -> Iterator[tuple[str, Any]]:
    return iter(value.items()) if isinstance(value, dict) else iter(())


def _check_policy(doc: dict, found: _Problems) -> None:
    """Refuse what would weaken isolation, with a reason rather than "unknown key"."""
    for name, service in _entries(doc.get("services")):
        if not isinstance(service, dict):
            continue
        base = ("services", name)
        for key in sorted(service.keys() & SERVICE_POLICY.keys()):
            found.refuse((*base, key), SERVICE_POLICY[key])
        for i, volume in _items(service.get("volumes")):
            _check_volume_policy((*base, "volumes", i), volume, found)
        for i, port in _items(service.get("ports")):
            _check_port_policy((*base, "ports", i), port, found)


def _looks_like_host_path(value: Any) -> bool:
    return isinstance(value, str) and (
        value.startswith((".", "~")) or "/" in value or "\\" in value
    )


def _check_volume_policy(path: Path, volume: Any, found: _Problems) -> None:
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


def _check_port_policy(path: Path, port: Any, found: _Problems) -> None:
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


# --- cross-field checks --------------------------------------------------------------------

_BUNDLED_IMAGE = re.compile(SCHEMA["$defs"]["bundledImage"]["pattern"])


def _check_semantics(doc: dict, found: _Problems, members: frozenset[str] | None) -> None:
    _check_parsed(("version",), doc.get("version"), _version_problem, found)
    for name, text in _entries(doc.get("requires")):
        _check_parsed(("requires", name), text, _range_problem, found)
    for slot, binding in _entries(doc.get("bindings")):
        if isinstance(binding, dict):
            _check_parsed(
                ("bindings", slot, "version"), binding.get("version"), _range_problem, found
            )
    if isinstance(doc.get("logo"), str):
        _check_member(("logo",), doc["logo"], "", members, found)
    if isinstance(doc.get("parameters"), dict):
        _check_parameter_schema(doc["parameters"], ("parameters",), found)
    services = doc.get("services", {})
    if isinstance(services, dict):
        _check_service_count(doc.get("type"), services, found)
        for name, service in services.items():
            if isinstance(service, dict):
                _check_service(("services", name), service, services, members, found)
        _check_cycles(services, found)
    for name, action in _entries(doc.get("actions")):
        if isinstance(action, dict):
            _check_action(("actions", name), action, services, found)


def _version_problem(text: str) -> str | None:
    return None if is_version(text) else f"{text!r} is not a semantic version like 1.2.3"


def _range_problem(text: str) -> str | None:
    return None if is_range(text) else f"{text!r} is not a version range like '>=1.2.0 <2.0.0'"


def _check_parsed(path: Path, value: Any, problem_of: Any, found: _Problems) -> None:
    # Only strings: a wrong type is the schema's to report.
    if isinstance(value, str) and (problem := problem_of(value)):
        found.add(path, problem)


def _check_service_count(kind: Any, services: dict, found: _Problems) -> None:
    if kind == "library" and services:
        found.add(("services",), "a library has no services")
    elif kind == "application" and not services:
        found.add(("services",), "an application needs at least one service")


def _check_member(
    path: Path, ref: str, prefix: str, members: frozenset[str] | None, found: _Problems
) -> None:
    parts = ref.split("/")
    if not ref.startswith(prefix) or "\\" in ref or any(p in ("", ".", "..") for p in parts):
        where = f" under {prefix}" if prefix else ""
        found.add(path, f"must be a file of the package{where}, without . or .. parts")
    elif members is not None and ref not in members:
        found.add(path, f"{ref} is not in the package")


def _check_service(
    base: Path, service: dict, services: dict, members: frozenset[str] | None, found: _Problems
) -> None:
    image = service.get("image")
    bundled = image.get("bundled") if isinstance(image, dict) else None
    if isinstance(bundled, str) and _BUNDLED_IMAGE.search(bundled):
        _check_member((*base, "image", "bundled"), bundled, "images/", members, found)
    for target, ref in _entries(service.get("files")):
        if isinstance(ref, str):
            _check_member((*base, "files", target), ref, "files/", members, found)
    if isinstance(service.get("healthcheck"), dict):
        _check_healthcheck((*base, "healthcheck"), service["healthcheck"], found)
    if isinstance(service.get("resources"), dict):
        _check_memory((*base, "resources", "memory"), service["resources"].get("memory"), found)
    _check_ports((*base, "ports"), service.get("ports"), found)
    _check_volumes((*base, "volumes"), service.get("volumes"), found)
    for i, other in _items(service.get("depends_on")):
        if isinstance(other, str) and other not in services:
            found.add((*base, "depends_on", i), f"unknown service {other!r}")


def _check_healthcheck(path: Path, check: dict, found: _Problems) -> None:
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


def _check_memory(path: Path, value: Any, found: _Problems) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return
    try:
        size = value if isinstance(value, int) else parse_bytes(value)
    except ValueError:
        return  # malformed: the schema says so
    if not MEMORY_MIN <= size <= MEMORY_MAX:
        found.add(path, "must be between 4m and 64g")


def _check_ports(path: Path, ports: Any, found: _Problems) -> None:
    seen: dict[tuple, int] = {}
    names: dict[str, int] = {}
    for i, port in _items(ports):
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


def _check_volumes(path: Path, volumes: Any, found: _Problems) -> None:
    mounted: dict[str, int] = {}
    for i, volume in _items(volumes):
        target = volume.get("path") if isinstance(volume, dict) else None
        if isinstance(target, str) and ":" in target:
            # The engine's volume syntax splits at ':': `/data:/etc` would mount on /etc.
            found.add((*path, i, "path"), "a volume path may not contain ':'")
        if isinstance(target, str) and target in mounted:
            where = format_path(("volumes", mounted[target]))
            found.add((*path, i, "path"), f"{target} is already mounted by {where}")
        if isinstance(target, str):
            mounted.setdefault(target, i)


def _check_cycles(services: dict, found: _Problems) -> None:
    """One problem per dependency cycle (strongly connected group), on its first service."""
    graph = {
        name: sorted(
            {d for _, d in _items(s.get("depends_on")) if isinstance(d, str) and d in services}
        )
        for name, s in services.items()
        if isinstance(s, dict)
    }
    reach = {name: _reachable(graph, name) for name in graph}
    reported: set[str] = set()
    for name in sorted(graph):
        if name in reported or name not in reach[name]:
            continue
        group = {other for other in reach[name] if name in reach[other]}
        reported |= group
        cycle = " -> ".join(_shortest_cycle(graph, name))
        found.add(("services", name, "depends_on"), f"dependency cycle: {cycle}")


def _reachable(graph: dict[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def _shortest_cycle(graph: dict[str, list[str]], start: str) -> list[str]:
    """Breadth-first from `start` until an edge leads back to it."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in graph.get(node, ()):
                if nxt == start:
                    return [*_walk_back(parents, node, start), start]
                if nxt not in parents:
                    parents[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start]


def _walk_back(parents: dict[str, str], node: str, start: str) -> list[str]:
    path = [node]
    while path[-1] != start:
        path.append(parents[path[-1]])
    return path[::-1]


def _check_action(base: Path, action: dict, services: Any, found: _Problems) -> None:
    service = action.get("service")
    if isinstance(service, str) and isinstance(services, dict) and service not in services:
        found.add((*base, "service"), f"unknown service {service!r}")
    if isinstance(action.get("parameters"), dict):
        _check_parameter_schema(action["parameters"], (*base, "parameters"), found)


# --- parameter schemas ---------------------------------------------------------------------


def _check_parameter_schema(schema: dict, path: Path, found: _Problems) -> None:
    """A JSON Schema (2020-12) of an object, local references only, defaults that fit."""
    text = json.dumps(schema, separators=(",", ":"))
    if len(text) > CACHED_SCHEMA_CHARS:
        problems = _schema_problems(schema, found.echo)
    else:
        problems = _cached_schema_problems(text, found.echo)
    for where, message in problems:
        found.add((*path, *where), message)


def _schema_problems(schema: dict, echo: bool) -> tuple[tuple[Path, str], ...]:
    """The problems of one parameter schema, with paths inside the schema."""
    found = _Problems(echo=echo)
    errors = list(_META.iter_errors(schema))
    for error in errors:
        found.add_error(error, ())
    broken = [tuple(error.absolute_path) for error in errors]
    if schema.get("type") != "object" and ("type",) not in broken:
        found.add(("type",), 'must be "object": parameters are a mapping of names to values')
    for where, message in (*secret_schema_problems(schema), *_pattern_problems(schema)):
        if where not in broken:  # the meta-schema said what is wrong there already
            found.add(where, message)
    if _check_references(schema, (), found):
        _check_properties(schema, (), ParameterValidator(schema), broken, found)
    return tuple(found.items)


def _pattern_problems(schema: dict) -> Iterator[tuple[Path, str]]:
    """Patterns RE2 cannot match (patterns.py), and the one keyword that would match them
    with Python's backtracking `re`: unevaluatedProperties beside patternProperties."""
    has_pattern_properties = False
    for path, sub in subschemas(schema):
        if isinstance(sub.get("pattern"), str):
            problem = pattern_problem(sub["pattern"])
            if problem:
                yield (*path, "pattern"), f"{_RE2} ({problem})"
        for key in sub.get("patternProperties") or {}:
            has_pattern_properties = True
            problem = pattern_problem(key)
            if problem:
                yield (*path, "patternProperties", key), f"{_RE2} ({problem})"
    if has_pattern_properties:
        for path, sub in subschemas(schema):
            if "unevaluatedProperties" in sub:
                yield (
                    (*path, "unevaluatedProperties"),
                    ("cannot be used with patternProperties; use additionalProperties"),
                )


_RE2 = "is not a pattern RE2 can match (no backreferences or lookaround)"


# Checking a schema against the 2020-12 meta-schema is the dearest part of reading a manifest
# (most of an upload's validation), and a package's versions mostly keep their parameters:
# the problems of recent schemas are kept, by their JSON text. Larger schemas are checked
# every time, so the cache stays small whatever publishers send.
CACHED_SCHEMA_CHARS = 16 * 1024


@functools.lru_cache(maxsize=256)
def _cached_schema_problems(text: str, echo: bool) -> tuple[tuple[Path, str], ...]:
    return _schema_problems(json.loads(text), echo)


def _check_references(schema: dict, path: Path, found: _Problems) -> bool:
    """Whether every $ref resolves inside the schema: nothing may be fetched from elsewhere."""
    resource = DRAFT202012.create_resource(schema)
    resolver = Registry().with_resource(_PARAMETERS_URI, resource).resolver(_PARAMETERS_URI)
    resolved = True
    for ref_path, ref in _references(schema, path):
        if not ref.startswith("#"):
            found.add(ref_path, "only references inside the schema (#...) are allowed")
            resolved = False
            continue
        try:
            resolver.lookup(ref)
        except Unresolvable:
            found.add(ref_path, f"{ref} does not point to anything in the schema")
            resolved = False
    return resolved


def _references(node: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield (*path, key), value
            else:
                yield from _references(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _references(value, (*path, i))


def _check_properties(
    schema: dict,
    path: Path,
    validator: ParameterValidator,
    broken: list[Path],
    found: _Problems,
) -> None:
    for name, sub in _entries(schema.get("properties")):
        if not isinstance(sub, dict):
            continue
        sub_path = (*path, "properties", name)
        # A default is checked against its property only when the property itself is sound.
        sound = not any(b[: len(sub_path)] == sub_path for b in broken)
        if "default" in sub and sound:
            _check_default(sub_path, sub, validator, found)
        _check_properties(sub, sub_path, validator, broken, found)


def _check_default(
    path: Path, schema: dict, validator: ParameterValidator, found: _Problems
) -> None:
    try:
        # evolve keeps the root's resolver, so local $refs inside the property still work
        errors = list(validator.evolve(schema=schema).iter_errors(schema["default"]))
    except (Unresolvable, re.error):
        found.add(path, "cannot be checked against its own schema")
        return
    if errors:
        first = min(errors, key=lambda e: _path_key(tuple(e.absolute_path)))
        where = format_path(first.absolute_path)
        detail = _message(first, echo=schema.get("x-secret") is not True)
        found.add(
            (*path, "default"), f"does not fit the property: {where}{': ' if where else ''}{detail}"
        )


# --- defaults ------------------------------------------------------------------------------


def _empty_schema() -> dict:
    return {"type": "object", "properties": {}}


def _fill_defaults(doc: dict) -> dict:
    """Fill what the format defines, so that consumers need no `.get(key, default)`."""
    doc.setdefault("title", doc["name"])
    doc.setdefault("description", "")
    doc.setdefault("parameters", _empty_schema())
    for key, empty in (("tags", []), ("requires", {}), ("bindings", {}), ("services", {})):
        doc.setdefault(key, empty)
    for key in ("outputs", "actions"):
        doc.setdefault(key, {})
    for binding in doc["bindings"].values():
        binding.setdefault("required", True)
    for service in doc["services"].values():
        _fill_service_defaults(service)
    for action in doc["actions"].values():
        action.setdefault("parameters", _empty_schema())
        action.setdefault("description", "")
    return doc


def _fill_service_defaults(service: dict) -> None:
    for key in ("environment", "files"):
        service.setdefault(key, {})
    for key in ("ports", "volumes", "depends_on"):
        service.setdefault(key, [])
    for port in service["ports"]:
        port.setdefault("protocol", "tcp")
        port.setdefault("publish", False)
    for volume in service["volumes"]:
        volume.setdefault("read_only", False)
    http = service.get("healthcheck", {}).get("http")
    if http is not None:
        http.setdefault("path", "/")


def _apply_defaults(schema: Any, value: Any) -> Any:
    if not isinstance(schema, dict) or not isinstance(value, dict):
        return value
    for name, sub in _entries(schema.get("properties")):
        if not isinstance(sub, dict):
            continue
        if name not in value and "default" in sub:
            value[name] = copy.deepcopy(sub["default"])
        elif name not in value and _fills_itself(sub):
            value[name] = {}
        if name in value:
            _apply_defaults(sub, value[name])
    return value


def _fills_itself(schema: dict) -> bool:
    # An object of settings with defaults is created, unless it needs something from the user.
    props = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(props, dict):
        return False
    defaults = {
        n for n, s in props.items() if isinstance(s, dict) and ("default" in s or _fills_itself(s))
    }
    return bool(defaults) and set(schema.get("required", ())) <= defaults


def _secret_names(schema: Any, prefix: str) -> Iterator[str]:
    for name, sub in _entries(schema.get("properties") if isinstance(schema, dict) else None):
        if isinstance(sub, dict):
            if sub.get("x-secret") is True:
                yield prefix + name
            yield from _secret_names(sub, f"{prefix}{name}.")
