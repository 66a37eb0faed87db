"""A Murano application package (a directory or the zip `murano package-create` makes) as a
catalog/v1 package, read statically: no MuranoPL is executed.

How it maps (every conversion that loses or guesses something leaves a report line):

- manifest.yaml (Format 1.x, Type Application): FullName -> `name` (or the `name` given),
  Name -> `title`, Description, Author, Tags -> lowercase catalog tags (rewritten or dropped
  ones reported), `Version` -> `version` when semver (`1.2` is padded, anything else is 1.0.0),
  logo.png -> `logo`, an Apache-2.0 LICENSE -> `license` (the file is copied). A Library
  package is refused: it runs no container, and the apps built on it import without it.
  `Require` names Murano libraries and hosts the catalog has no equivalent of: dropped; a
  dependency on another app is the binding slot of the property that holds it.
- The application's class is the one whose FQN is FullName, else the one ui.yaml creates,
  else the only one. Its `getContainer` Return (see murano_container) is the one service,
  named after the class without a leading "Docker" (DockerGrafana -> grafana). Its image is
  a literal; an image that is a property is fixed to that property's default, or to a
  placeholder when it has none (DockerApp), reported either way; any other expression is
  refused. `env` values are text, `$.prop`, a connection's host or port, or `format(...)` of
  these; `commands` become the command; env or ports computed by a method are reported and
  left out. A variable read but never assigned is taken for the method's only connection
  when there is exactly one (Orion misspells $mongoendopoint), reported; otherwise refused.
- Properties read by the container become parameters: `$.string()`, `$.int()`, `$.bool()`
  (anything else a string, reported); `.notNull()` without a default -> required; the
  default is ui.yaml's `initial` (what the form submits untouched), else `Default`. ui.yaml
  gives `title` (label) and `description`; a password field or a secret-sounding name is
  `x-secret`; `required: false` is never required. Properties the container does not read
  are not parameters (reported): a parameter that changes nothing would mislead. The `name`
  property is the container's name, which the catalog chooses; `publish` (through `_scope`)
  is fixed to its default, as a port's `publish` is static in a catalog package.
- A `$.class(App)` property is a binding slot on App's package (required when notNull);
  `getConnectionTo($.slot, PORT).host` reads `bindings.slot.outputs.host`, `.port` reads
  `port_PORT`, which every imported package declares for each of its ports, falling back to
  `port` (its first port) for a bound package that does not. A class of this package that
  the app creates itself (GuestBook's redis slave) becomes a second, unpublished service;
  Murano hosts and platform classes (io.murano.*, com.mirantis.docker.*) are dropped.
- Outputs: `host` (the service's hostname), `port` (the first port) and `port_N` per port.
- Murano knows no readiness check: a service with ports gets a tcp healthcheck on its first
  one, so it counts as ready when it accepts connections rather than after merely staying up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from packages.archive import PackageArchive, open_archive
from packages.errors import PackageError, Problem
from packages.importers import Imported, ImportRefused, dns_label, is_secret_name, param_ref
from packages.importers.murano_container import container_service
from packages.importers.murano_meta import Field, describe_package, requirements, typed, ui_fields
from packages.importers.murano_pl import (
    MISSING,
    Keys,
    MuranoClass,
    Property,
    load_murano_yaml,
    located,
    read_body,
    read_class,
    refusal,
)
from packages.limits import DEFAULT_LIMITS

MANIFEST = "manifest.yaml"
_YAML_BYTES = DEFAULT_LIMITS.max_manifest_bytes
_FQN = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_PLATFORM = ("io.murano.", "com.mirantis.docker.")
_TYPES = {"string": "string", "int": "integer", "bool": "boolean"}
_HEALTHCHECK = {"interval": "2s", "timeout": "2s", "retries": 60}


def import_murano(
    source: str | os.PathLike, *, name: str | None = None, version: str | None = None
) -> Imported:
    """The catalog package a Murano package makes; ImportRefused when it cannot make one."""
    try:
        with _open(source) as files:
            return _Importer(files, name, version).run()
    except ImportRefused:
        raise
    except OSError as exc:
        raise ImportRefused([Problem(str(source), f"cannot be read: {exc}")]) from None
    except PackageError as exc:  # the archive's own checks, or a YAML file load_yaml refused
        label = Path(source).name
        raise ImportRefused([Problem(p.path or label, p.message) for p in exc.problems]) from None
    except RecursionError:
        raise ImportRefused([Problem(str(source), "nests too deeply to import")]) from None


# --- the files of the Murano package -----------------------------------------------------


class _Files:
    """Members of the Murano package by name; a single top directory around them is looked in."""

    def __init__(self, names: set[str]) -> None:
        self.prefix = ""
        tops = {name.split("/", 1)[0] for name in names}
        if MANIFEST not in names and len(tops) == 1 and f"{next(iter(tops))}/{MANIFEST}" in names:
            self.prefix = f"{next(iter(tops))}/"
        self.names = {n.removeprefix(self.prefix) for n in names if n.startswith(self.prefix)}

    def read(self, name: str, limit: int) -> bytes:
        """At most `limit` + 1 bytes of the member, so that the caller can tell it is too big."""
        raise NotImplementedError


class _DirectoryFiles(_Files):
    def __init__(self, root: Path) -> None:
        self.root = root
        found = set()
        for dirpath, _dirs, filenames in os.walk(root, followlinks=False):
            for filename in filenames:
                path = Path(dirpath, filename)
                if path.is_file() and not path.is_symlink():  # links are never followed
                    found.add(path.relative_to(root).as_posix())
        super().__init__(found)

    def read(self, name: str, limit: int) -> bytes:
        with open(self.root / (self.prefix + name), "rb") as fh:
            return fh.read(limit + 1)


class _ArchiveFiles(_Files):
    def __init__(self, archive: PackageArchive) -> None:
        self.archive = archive
        super().__init__(set(archive.names))

    def read(self, name: str, limit: int) -> bytes:
        with self.archive.open(self.prefix + name) as stream:
            return stream.read(limit + 1)


@contextmanager
def _open(source: str | os.PathLike) -> Iterator[_Files]:
    path = Path(source)
    if path.is_dir():
        yield _DirectoryFiles(path)
    elif path.is_file():
        with open_archive(path) as archive:  # the same checks as an upload: traversal, bombs
            yield _ArchiveFiles(archive)
    else:
        raise ImportRefused([Problem(str(source), "no such directory or file")])


def _member_name(text: Any) -> str | None:
    """A relative file name inside the package, or None for one that could leave it."""
    if not isinstance(text, str) or not text or "\\" in text:
        return None
    parts = PurePosixPath(text).parts
    if text.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    return text


# --- the import ----------------------------------------------------------------------------


@dataclass
class _Slot:
    package: str
    required: bool
    description: str


class _Importer:
    """One import: reads the Murano package, answers the container's `Links`, builds."""

    def __init__(self, files: _Files, name: str | None, version: str | None) -> None:
        self.files = files
        self.name_override = name
        self.version_override = version
        self.imported = Imported(manifest={})
        self.classes: dict[str, MuranoClass] = {}
        self.fields: dict[str, Field] = {}
        self.main: MuranoClass | None = None
        self.parameters: dict[str, dict[str, Any]] = {}
        self.required: list[str] = []
        self.slots: dict[str, _Slot] = {}
        self.helpers: dict[str, str] = {}  # class FQN -> its service
        self.converted: set[tuple[str, str]] = set()  # (class FQN, property) taken care of

    def note(self, source: str, keys: Keys, message: str) -> None:
        self.imported.note(source, located(keys, message))

    def yaml(self, name: str) -> Any:
        return load_murano_yaml(self.files.read(name, _YAML_BYTES), name)

    def run(self) -> Imported:
        if MANIFEST not in self.files.names:
            raise refusal(
                MANIFEST, (), "missing: not a Murano package (no manifest.yaml at its root)"
            )
        doc = self.yaml(MANIFEST)
        manifest, full_name = describe_package(
            doc, self.files, self.name_override, self.version_override, self.imported
        )
        self.read_classes(doc)
        made_type = self.read_ui(doc)
        main = self.main = self.main_class(full_name, made_type)
        own = self.service_name(main)
        for prop in main.properties.values():
            if prop.contract.kind == "class":
                self.app_property(main, prop)
        services = {own: container_service(main, self, publishable=True)}
        done: set[str] = set()
        while pending := [fqn for fqn in self.helpers if fqn not in done]:
            for fqn in pending:  # a helper may need another helper: converted in turn
                done.add(fqn)
                service = self.helpers[fqn]
                services[service] = container_service(self.classes[fqn], self, publishable=False)
                self.note(
                    self.classes[fqn].source,
                    (),
                    f"a class the app creates itself: service {service}, which {own} depends"
                    " on; its ports are not published",
                )
        if self.helpers:
            services[own]["depends_on"] = list(self.helpers.values())
        self.report_unused(main)
        requirements(doc, {s.package: slot for slot, s in self.slots.items()}, self.imported)
        if self.parameters:
            manifest["parameters"] = {"type": "object", "properties": self.parameters}
            if self.required:
                manifest["parameters"]["required"] = self.required
        if self.slots:
            manifest["bindings"] = {
                slot: {"package": s.package, "required": s.required, "description": s.description}
                for slot, s in self.slots.items()
            }
        manifest["services"] = services
        self.add_healthchecks(services)
        manifest["outputs"] = self.outputs(own, services)
        self.imported.manifest = manifest
        return self.imported

    # --- classes -------------------------------------------------------------------------------

    def read_classes(self, doc: dict) -> None:
        listed = doc.get("Classes")
        if not isinstance(listed, dict) or not listed:
            raise refusal(MANIFEST, ("Classes",), "must map each class's full name to its file")
        for fqn, filename in listed.items():
            member = _member_name(filename)
            if member is None:
                raise refusal(MANIFEST, ("Classes", str(fqn)), "must be a file name in Classes/")
            source = f"Classes/{member}"
            if source not in self.files.names:
                raise refusal(MANIFEST, ("Classes", str(fqn)), f"{source} is not in the package")
            self.classes[str(fqn)] = read_class(self.yaml(source), str(fqn), source)

    def read_ui(self, doc: dict) -> str | None:
        member = _member_name(doc.get("UI", "ui.yaml"))
        source = f"UI/{member or doc.get('UI')}"
        if member is None or source not in self.files.names:
            self.imported.note(source, "missing: the parameters have no titles or descriptions")
            return None
        fields, made_type = ui_fields(self.yaml(source), source)
        self.fields = fields
        return made_type

    def main_class(self, full_name: str, made_type: str | None) -> MuranoClass:
        if full_name in self.classes:
            chosen = self.classes[full_name]
        elif made_type in self.classes:
            chosen = self.classes[str(made_type)]
        elif len(self.classes) == 1:
            chosen = next(iter(self.classes.values()))
        else:
            raise refusal(MANIFEST, ("Classes",), f"none is {full_name}, and ui.yaml names none")
        if chosen.fqn != full_name:
            self.note(
                chosen.source,
                (),
                f"{chosen.fqn} is taken for the application's class, none being {full_name}",
            )
        return chosen

    def service_name(self, cls: MuranoClass) -> str:
        return dns_label(cls.name.removeprefix("Docker") or cls.name)

    def app_property(self, cls: MuranoClass, prop: Property) -> str | None:
        """What a `$.class(...)` property is: a slot, a helper service, or dropped (None)."""
        keys: Keys = ("Properties", prop.name, "Contract")
        target = cls.resolve(prop.contract.target, keys)
        self.converted.add((cls.fqn, prop.name))
        main = self.main or cls
        if target in (cls.fqn, main.fqn):
            self.note(cls.source, keys, "names the application itself: dropped")
            return None
        if target in self.classes:
            if target not in self.helpers:
                if read_body(self.classes[target], "getContainer") is None:
                    self.note(cls.source, keys, f"{target} runs no container: dropped")
                    return None
                service = self.service_name(self.classes[target])
                taken = {self.service_name(main), *self.helpers.values()}
                if service in taken:
                    service = dns_label(f"{service[:55]}-{len(taken) + 1}")
                self.helpers[target] = service
            return None
        if target.startswith(_PLATFORM) or not _FQN.fullmatch(target):
            self.note(
                cls.source,
                keys,
                f"{target} is a Murano host or platform class: dropped;"
                " the catalog places containers itself",
            )
            return None
        if prop.usage not in ("In", "InOut"):
            self.note(cls.source, keys, f"Usage {prop.usage}: set by the app itself: no slot")
            return None
        if not _IDENTIFIER.fullmatch(prop.name):
            raise refusal(cls.source, ("Properties", prop.name), "not a binding slot name")
        slot = self.slots.get(prop.name)
        if slot is not None and slot.package != target:
            raise refusal(cls.source, keys, f"slot {prop.name} already binds {slot.package}")
        if slot is None:
            field = self.fields.get(prop.name) if cls is self.main else None
            text = (field and (field.description or field.label)) or f"An app of {target}."
            self.slots[prop.name] = _Slot(target, prop.contract.not_null, text[:1000])
        return prop.name

    # --- Links: what the container's values read -----------------------------------------------

    def static(self, cls: MuranoClass, prop: str) -> Any:
        field = self.fields.get(prop) if cls is self.main else None
        if field is not None and field.initial is not None:
            return field.initial
        found = cls.properties.get(prop)
        return found.default if found is not None else MISSING

    def handled(self, cls: MuranoClass, prop: str) -> None:
        self.converted.add((cls.fqn, prop))

    def parameter(self, cls: MuranoClass, prop: str, keys: Keys) -> str:
        found = cls.properties.get(prop)
        if found is None:
            raise refusal(cls.source, keys, f"$.{prop} is not a property of {cls.name}")
        if found.contract.kind == "class":
            raise refusal(cls.source, keys, f"$.{prop} is an app: read it with getConnectionTo")
        if not _IDENTIFIER.fullmatch(prop):
            raise refusal(cls.source, ("Properties", prop), "not a parameter name")
        self.converted.add((cls.fqn, prop))
        schema = self.parameters.get(prop) or self.define(cls, found)
        reading = param_ref(prop)
        if "default" not in schema and prop not in self.required:
            reading += " | default(" + ("false" if schema["type"] == "boolean" else "''") + ")"
        return (
            f"{{{{ {reading} | lower }}}}"
            if schema["type"] == "boolean"
            else f"{{{{ {reading} }}}}"
        )

    def define(self, cls: MuranoClass, prop: Property) -> dict[str, Any]:
        keys: Keys = ("Properties", prop.name, "Contract")
        contract = prop.contract
        kind = _TYPES.get(contract.kind, "string")
        if contract.kind not in _TYPES:
            self.note(cls.source, keys, f"{contract.text} is not a string, int or bool: a string")
        elif contract.rest:
            self.note(cls.source, keys, f"{contract.rest} is not kept: only the type is checked")
        field = self.fields.get(prop.name) if cls is self.main else None
        schema: dict[str, Any] = {"type": kind}
        if field is not None and field.label:
            schema["title"] = field.label
        if field is not None and field.description:
            schema["description"] = field.description
        raw = self.static(cls, prop.name)
        default = typed(raw, kind)
        if default is not None:
            schema["default"] = default
        elif raw is not None and raw is not MISSING:
            self.note(cls.source, keys, f"the default {raw!r} is no {kind}: no default")
        if (field is not None and field.type == "password") or is_secret_name(prop.name):
            schema["x-secret"] = True
        optional_field = field is not None and field.required is False
        if default is None and contract.not_null and not optional_field:
            self.required.append(prop.name)
        self.parameters[prop.name] = schema
        return schema

    def connection(self, cls: MuranoClass, prop: str, port: int, attr: str, keys: Keys) -> str:
        found = cls.properties.get(prop)
        if found is None or found.contract.kind != "class":
            raise refusal(cls.source, keys, f"getConnectionTo: $.{prop} is not an app property")
        slot = self.app_property(cls, found)
        target = cls.resolve(found.contract.target, ("Properties", prop, "Contract"))
        if target in self.helpers:
            service = self.helpers[target]
            return f"{{{{ services.{service}.hostname }}}}" if attr == "host" else str(port)
        if slot is None:
            raise refusal(cls.source, keys, f"getConnectionTo: $.{prop} is not an app")
        outputs = f"bindings.{slot}.outputs"
        if attr == "host":
            reading = f"{outputs}.host"
        else:
            reading = f"{outputs}.port_{port} | default({outputs}.port)"
        if not self.slots[slot].required:
            reading += " | default('')"
        return f"{{{{ {reading} }}}}"

    # --- the rest of the package ---------------------------------------------------------------

    def report_unused(self, cls: MuranoClass) -> None:
        for prop in cls.properties.values():
            if (cls.fqn, prop.name) in self.converted:
                continue
            keys: Keys = ("Properties", prop.name)
            if prop.usage != "In":
                self.note(cls.source, keys, f"Usage {prop.usage}: set by the app: no parameter")
            else:
                self.note(cls.source, keys, "not read by getContainer: no parameter")

    def add_healthchecks(self, services: dict[str, dict[str, Any]]) -> None:
        for service_name, service in services.items():
            tcp = [p["container"] for p in service.get("ports", []) if "protocol" not in p]
            if tcp:
                service["healthcheck"] = {"tcp": {"port": tcp[0]}, **_HEALTHCHECK}
                self.imported.note(
                    f"services.{service_name}.healthcheck",
                    f"Murano declares no readiness check: ready once port {tcp[0]} accepts"
                    " connections (a guess: change it if another port answers first)",
                )

    def outputs(self, service_name: str, services: dict[str, dict[str, Any]]) -> dict[str, str]:
        outputs = {"host": f"{{{{ services.{service_name}.hostname }}}}"}
        ports = [p["container"] for p in services[service_name].get("ports", [])]
        if ports:
            outputs["port"] = str(ports[0])
            outputs.update({f"port_{port}": str(port) for port in ports})
        return outputs
