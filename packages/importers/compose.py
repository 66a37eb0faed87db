"""A Compose file made into one catalog/v1 package: its services, parameters and files.

The file is read with the manifest's safe YAML loader and checked against the Compose
Specification's own JSON Schema (`schema/compose-spec.json`, Apache-2.0, kept with its
licence) before anything is converted. Variables become parameters (typed from their
defaults, required without one, `x-secret` when their name says so); `.env` beside the file
gives defaults as Compose would; services named as hosts in values become the catalog's
hostnames; secrets and configs become files fed by parameters; the app-store metadata of
`x-casaos` becomes the title, description, tags and port names. What the container policy
forbids is refused naming its Compose path (`services.jellyfin.devices: devices are not
allowed`), or dropped with a line when `drop_unsafe` is set; the report has a line for every
other conversion. See compose_service.py for one service, compose_values.py for the values.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

from packages.importers import Imported, ImportRefused, dns_label
from packages.importers.compose_context import MAX_COPIED_FILE, Context, inside
from packages.importers.compose_service import convert_service
from packages.importers.compose_values import (
    Parameters,
    ValueProblem,
    host_path_problem,
    read_dotenv,
)
from packages.problems import Problems
from packages.yamlload import load_yaml

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_SCHEMA = Path(__file__).with_name("schema") / "compose-spec.json"


@functools.cache
def _validator() -> Draft7Validator:
    return Draft7Validator(json.loads(_SCHEMA.read_text(encoding="utf-8")))


def compose_file(source: str | os.PathLike) -> Path:
    """The Compose file `source` names: the file itself, or the one a directory holds."""
    path = Path(source)
    if path.is_dir():
        for name in COMPOSE_FILES:
            if (path / name).is_file() or (path / name).is_symlink():
                return compose_file(path / name)
        raise ImportRefused(f"{path}: no {' or '.join(COMPOSE_FILES)} in this directory")
    if path.is_symlink():
        raise ImportRefused(f"{path}: a link; give the Compose file itself")
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    return path


def import_compose(
    source: str | os.PathLike,
    *,
    name: str | None = None,
    version: str | None = None,
    drop_unsafe: bool = False,
    profiles: Iterable[str] = (),
) -> Imported:
    """The package a Compose file (or a directory holding one) becomes; raises ImportRefused."""
    try:
        return _import(compose_file(source), name, version, drop_unsafe, set(profiles))
    except RecursionError:
        raise ImportRefused("the Compose file nests too deeply to import") from None


def _import(
    file: Path, name: str | None, version: str | None, drop_unsafe: bool, profiles: set[str]
) -> Imported:
    document = load_yaml(file.read_bytes(), source=file.name)
    if not isinstance(document, dict):
        raise ImportRefused("a Compose file is a mapping with services", path=file.name)
    found = Problems()
    for error in _validator().iter_errors(document):
        found.add_error(error, ())
    if found:
        raise ImportRefused(found.sorted())
    imported = Imported(manifest={})
    dotenv = _dotenv(file.parent)
    params = Parameters(dotenv, imported.note)
    services = _selected(document, profiles, imported, found)
    labels = _labels(services, found)
    ctx = Context(file.parent, imported, params, found, drop_unsafe, labels)
    ctx.private = _private_files(ctx, file, document)
    _top_level(ctx, document)
    ctx.extras = {kind: _extras(ctx, document, kind) for kind in ("secrets", "configs")}
    converted = {}
    for service, spec in services.items():
        try:
            converted[labels[service]] = convert_service(ctx, service, spec)
        except ValueProblem as exc:  # a value no field could take
            found.add(("services", service), str(exc))
    store = _store(document)
    _apply_store(ctx, services, converted)
    if found:
        raise ImportRefused(found.sorted())
    imported.manifest = _manifest(ctx, document, file, converted, store, name, version)
    return imported


def _private_files(ctx: Context, file: Path, document: dict) -> set[Path]:
    """The Compose file, `.env`, every env file and secret file: never copied in."""
    named: list[Any] = [file.name, ".env"]
    for spec in (document.get("services") or {}).values():
        entries = spec.get("env_file")
        for entry in entries if isinstance(entries, list) else [entries]:
            named.append(entry.get("path") if isinstance(entry, dict) else entry)
    named += [
        s.get("file") for s in (document.get("secrets") or {}).values() if isinstance(s, dict)
    ]
    return {p for n in named if isinstance(n, str) and (p := inside(ctx.base, n)) is not None}


def _dotenv(directory: Path) -> dict[str, str]:
    path = directory / ".env"
    if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_COPIED_FILE:
        return {}
    return read_dotenv(path.read_text(encoding="utf-8", errors="replace"))


def _selected(document: dict, profiles: set[str], imported: Imported, found: Problems) -> dict:
    services = {}
    for service, spec in (document.get("services") or {}).items():
        wanted = set(spec.get("profiles") or ())
        if wanted and not wanted & profiles:
            imported.note(
                f"services.{service}.profiles",
                f"left out: in profile(s) {', '.join(sorted(wanted))}",
            )
            continue
        services[service] = spec
    if not services:
        found.add(
            ("services",), "no service to import (a service in a profile needs --compose-profile)"
        )
    return services


def _labels(services: dict, found: Problems) -> dict[str, str]:
    labels: dict[str, str] = {}
    for service in services:
        label = dns_label(service)
        if label in labels.values():
            found.add(("services", service), f"is {label} in the catalog, like another service")
        labels[service] = label
    return labels


def _top_level(ctx: Context, document: dict[str, Any]) -> None:
    if "include" in document:
        ctx.found.add(
            ("include",), "include is not imported: merge the files first (docker compose config)"
        )
    if document.get("networks"):
        ctx.note(("networks",), "dropped: every service joins its environment's network")
    if document.get("models"):
        ctx.note(("models",), "dropped: the catalog has no equivalent")
    for volume, spec in (document.get("volumes") or {}).items():
        path = ("volumes", volume)
        if not isinstance(spec, dict) or not spec:
            continue
        device = (spec.get("driver_opts") or {}).get("device")
        if isinstance(device, str) and (problem := host_path_problem(device)):
            ctx.unsafe((*path, "driver_opts"), problem)
        ctx.note(path, "its driver, options and name are the catalog's: an app's own named volume")


def _identifier(text: str) -> str:
    name = re.sub(r"\W+", "_", text, flags=re.ASCII).strip("_") or "value"
    return f"_{name}" if name[0].isdigit() else name


def _extras(ctx: Context, document: dict, kind: str) -> dict[str, str]:
    """Secrets or configs used by the services: name -> the member that holds them."""
    members: dict[str, str] = {}
    used = {
        entry.get("source") if isinstance(entry, dict) else entry
        for spec in (document.get("services") or {}).values()
        for entry in spec.get(kind) or []
    }
    for source, spec in (document.get(kind) or {}).items():
        if source not in used:
            continue
        path = (kind, source)
        spec = spec or {}
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", source)
        if kind == "configs" and isinstance(spec.get("content"), str):
            member = f"files/configs/{slug}.j2"
            try:
                content = ctx.template(spec["content"], (*path, "content"))
            except ValueProblem as exc:
                ctx.found.add((*path, "content"), str(exc))
                continue
            ctx.imported.files[member] = content.encode()
        elif kind == "configs" and isinstance(spec.get("file"), str) and _beside(ctx, spec["file"]):
            member = f"files/configs/{slug}"
            ctx.imported.files[member] = _beside(ctx, spec["file"]) or b""
            ctx.note(path, f"{spec['file']} copied into the package")
        else:
            parameter = spec.get("environment") or _identifier(source)
            secret = kind == "secrets" or bool(
                ctx.params.schemas.get(parameter, {}).get("x-secret")
            )
            schema: dict[str, Any] = {"type": "string", "title": f"{kind[:-1].title()} {source}"}
            if secret:
                schema["x-secret"] = True
            ctx.params.schemas.setdefault(parameter, schema)
            ctx.params.required.add(parameter)
            member = f"files/{kind}/{slug}.j2"
            ctx.imported.files[member] = f"{{{{ params.{parameter} }}}}".encode()
            ctx.note(path, f"its content is the parameter {parameter}")
        members[source] = member
    return members


def _beside(ctx: Context, relative: str) -> bytes | None:
    path = inside(ctx.base, relative)
    if path is None or not path.is_file() or path.stat().st_size > MAX_COPIED_FILE:
        return None
    return path.read_bytes()


def _localised(value: Any) -> str:
    """A CasaOS text: a string, or a mapping of languages (en_us first)."""
    if isinstance(value, dict):
        for key in ("en_us", "en_US", "en", "en-us"):
            if isinstance(value.get(key), str):
                return value[key]
        value = next((v for v in value.values() if isinstance(v, str)), "")
    return value if isinstance(value, str) else ""


def _store(document: dict) -> dict[str, Any]:
    store = document.get("x-casaos")
    return store if isinstance(store, dict) else {}


def _apply_store(ctx: Context, services: dict, converted: dict) -> None:
    """A service's `x-casaos` env and port descriptions: parameter descriptions, port names."""
    for service, spec in services.items():
        store = spec.get("x-casaos") if isinstance(spec.get("x-casaos"), dict) else {}
        out = converted.get(ctx.labels[service], {})
        environment = spec.get("environment") if isinstance(spec.get("environment"), dict) else {}
        for entry in _entries(store.get("envs")):
            text, key = _localised(entry.get("description")), str(entry.get("container"))
            match = re.fullmatch(r"\$\{?(\w+)[^}]*\}?", str(environment.get(key, "")))
            if text and match and match.group(1) in ctx.params.schemas:
                ctx.params.describe.setdefault(match.group(1), text)
        for entry in _entries(store.get("ports")):
            text = _localised(entry.get("description"))
            for port in out.get("ports", []):
                if (
                    text
                    and str(port["container"]) == str(entry.get("container"))
                    and "name" not in port
                ):
                    port["name"] = (
                        re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63] or "port"
                    )


def _entries(value: Any) -> list[dict]:
    """The mappings of an `x-casaos` list; anything else in it is ignored."""
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _manifest(ctx: Context, document: dict, file: Path, services: dict, store: dict,
              name: str | None, version: str | None) -> dict[str, Any]:  # fmt: skip
    project = str(
        document.get("name")
        or store.get("store_app_id")
        or (name.rsplit(".", 1)[-1] if name else file.resolve().parent.name)
    )
    manifest: dict[str, Any] = {
        "format": "catalog/v1",
        "name": name or f"org.example.{dns_label(project)}",
        "version": version or "1.0.0",
        "type": "application",
        "title": (_localised(store.get("title")) or project.replace("-", " ").title())[:100],
    }
    if not version:
        ctx.note(("version",), "1.0.0: give the version with --version")
    description = "\n\n".join(
        t for t in (_localised(store.get("tagline")), _localised(store.get("description"))) if t
    )
    if description:
        manifest["description"] = description[:4000]
    if isinstance(store.get("author") or store.get("developer"), str):
        manifest["author"] = str(store.get("author") or store.get("developer"))[:200]
    tags = ["compose"] + (
        [dns_label(store["category"])[:32]] if isinstance(store.get("category"), str) else []
    )
    manifest["tags"] = list(dict.fromkeys(tags))
    logo = _beside(ctx, "logo.png")
    if logo and logo.startswith(b"\x89PNG"):
        ctx.imported.files["logo.png"] = logo
        manifest["logo"] = "logo.png"
    elif store.get("icon"):
        ctx.note(
            ("x-casaos", "icon"), f"not fetched ({store['icon']}): put a logo.png beside the file"
        )
    if (schema := ctx.params.schema()) is not None:
        manifest["parameters"] = schema
    manifest["services"] = services
    if outputs := _outputs(ctx, services, store):
        manifest["outputs"] = outputs
    return manifest


def _outputs(ctx: Context, services: dict, store: dict) -> dict[str, str]:
    """host and port (and url when published) of the main service, for apps bound to it."""
    main = ctx.labels.get(str(store.get("main")))
    candidates = [main] if main in services else []
    candidates += [
        s for s, spec in services.items() if any(p.get("publish") for p in spec.get("ports", []))
    ]
    candidates += [s for s, spec in services.items() if spec.get("ports")]
    if not candidates or not services[candidates[0]].get("ports"):
        return {}
    service = candidates[0]
    port = services[service]["ports"][0]
    host = f"{{{{ services.{service}.hostname }}}}"
    outputs = {"host": host, "port": str(port["container"])}
    if port.get("publish"):
        outputs["url"] = f"http://{host}:{port['container']}/"
    return outputs
