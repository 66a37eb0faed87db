"""The `catalog/v1` manifest: structure (JSON Schema), container policy and cross-field checks.

The structure lives in `packages/schema/manifest.json`; what a schema says badly is checked
by the modules beside this one: the container policy (`policy`: specific refusals for
privileged mode, host namespaces, binds...), semver and ranges, references between services
and members of the archive (`manifest_checks`), parameter schemas (`parameter_schemas`).
Every problem is collected, never just the first, one per mistake, sorted by path
(`problems`). This module reads, validates and fills the defaults.

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
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable

from packages.bounds import manifest_bounds
from packages.errors import ManifestValidationError
from packages.imageref import image_problems
from packages.limits import DEFAULT_LIMITS, Limits
from packages.manifest_checks import SCHEMA, check_semantics
from packages.parameter_schemas import pattern_problems
from packages.patterns import ParameterValidator
from packages.policy import check_policy, json_shaped
from packages.problems import Problems, format_path, mapping_entries
from packages.yamlload import load_yaml

# format_path is the problems module's, kept here for callers that word manifest paths.
__all__ = [
    "FORMAT",
    "Manifest",
    "format_path",
    "parse_manifest",
    "validate_manifest",
    "validate_parameters",
]

FORMAT = "catalog/v1"
_STRUCTURE = Draft202012Validator(SCHEMA)


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
    found = Problems()
    doc = json_shaped(doc, (), found)
    check_policy(doc, found)
    for error in _STRUCTURE.iter_errors(doc):
        found.add_error(error, ())
    check_semantics(doc, found, None if members is None else frozenset(members))
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
    found = Problems(echo=False)
    for where, message in pattern_problems(schema):  # a schema stored before RE2 was required
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
    for name, sub in mapping_entries(schema.get("properties")):
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
    properties = schema.get("properties") if isinstance(schema, dict) else None
    for name, sub in mapping_entries(properties):
        if isinstance(sub, dict):
            if sub.get("x-secret") is True:
                yield prefix + name
            yield from _secret_names(sub, f"{prefix}{name}.")
