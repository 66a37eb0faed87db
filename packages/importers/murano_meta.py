"""What describes a Murano package rather than runs it: manifest.yaml's metadata (format,
type, names, tags, version, logo, license, requirements) and the ui.yaml form fields that
title and describe the parameters. The mapping is in murano.py's docstring."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from packages.importers import Imported, ImportRefused
from packages.importers.murano_pl import MISSING, refusal
from packages.package import LOGO, MAX_LOGO_BYTES, PNG_MAGIC
from packages.versions import is_version

MANIFEST = "manifest.yaml"
_FORMAT = re.compile(r"(?:MuranoPL/)?1(?:\.[0-9]+)?")
_FQN = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+")
_TAG = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_FIELD_REF = re.compile(r"\$\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")
_MAX_TAGS = 20
_LICENSE_BYTES = 1024 * 1024
_LIMITS = {"title": 100, "description": 4000, "author": 200}


class Members(Protocol):
    names: set[str]

    def read(self, name: str, limit: int) -> bytes: ...


def describe_package(
    doc: Any, files: Members, name: str | None, version: str | None, imported: Imported
) -> tuple[dict[str, Any], str]:
    """The manifest's descriptive keys, and the package's FullName; logo and LICENSE copied."""
    if not isinstance(doc, dict):
        raise refusal(MANIFEST, (), "must be a mapping (Format, Type, FullName, Classes...)")
    murano_format = doc.get("Format", "1.0")
    if not _FORMAT.fullmatch(str(murano_format)):
        raise refusal(
            MANIFEST,
            ("Format",),
            f"{murano_format}: only MuranoPL packages of Format 1.x can be imported",
        )
    kind = doc.get("Type")
    if kind == "Library":
        raise refusal(
            MANIFEST,
            ("Type",),
            "Library: a library package: it runs no container; the applications built on it"
            " import without it",
        )
    if kind != "Application":
        raise refusal(MANIFEST, ("Type",), f"must be Application, not {kind!r}")
    full_name = doc.get("FullName")
    if not isinstance(full_name, str) or not full_name:
        raise refusal(MANIFEST, ("FullName",), "missing: the package's full name is needed")
    fqn = name if name is not None else full_name
    if len(fqn) > 128 or not _FQN.fullmatch(fqn):
        where = "name" if name is not None else f"{MANIFEST}: FullName"
        raise ImportRefused(
            f"{fqn!r} must be a reverse-DNS name like org.example.app: two or more"
            " dot-separated parts of letters, digits, _ or -",
            path=where,
        )
    manifest: dict[str, Any] = {
        "format": "catalog/v1",
        "name": fqn,
        "version": _version(doc.get("Version"), version, imported),
        "type": "application",
    }
    for key, murano_key in (
        ("title", "Name"),
        ("description", "Description"),
        ("author", "Author"),
    ):
        text = doc.get(murano_key)
        if isinstance(text, str) and text.strip():
            manifest[key] = _bounded(text.strip(), _LIMITS[key], murano_key, imported)
    _license(files, manifest, imported)
    _logo(doc, files, manifest, imported)
    tags = _tags(doc.get("Tags"), imported)
    if tags:
        manifest["tags"] = tags
    return manifest, full_name


def _bounded(text: str, limit: int, key: str, imported: Imported) -> str:
    if len(text) <= limit:
        return text
    imported.note(MANIFEST, f"{key}: cut to the catalog's {limit} characters")
    return text[:limit].rstrip()


def _version(raw: Any, override: str | None, imported: Imported) -> str:
    if override is not None:
        if not is_version(override):
            raise ImportRefused(f"{override!r} is not a semver version like 1.0.0", path="version")
        return override
    if raw is None:
        imported.note(MANIFEST, "Version: none given: 1.0.0")
        return "1.0.0"
    text = str(raw).strip()
    if is_version(text):
        return text
    padded = ".".join([*text.split("."), "0", "0"][:3])
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", text) and is_version(padded):
        imported.note(MANIFEST, f"Version: {text} is written {padded}")
        return padded
    imported.note(MANIFEST, f"Version: {text!r} is not a semver version: 1.0.0")
    return "1.0.0"


def _tags(raw: Any, imported: Imported) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        imported.note(MANIFEST, "Tags: not a list: no tags")
        return []
    tags: list[str] = []
    for item in raw:
        tag = re.sub(r"[^a-z0-9]+", "-", str(item).strip().lower()).strip("-")
        if not _TAG.fullmatch(tag):
            imported.note(MANIFEST, f"Tags: {item!r} cannot be a catalog tag: dropped")
        elif tag not in tags and len(tags) == _MAX_TAGS:
            imported.note(MANIFEST, f"Tags: {item!r} is past the catalog's {_MAX_TAGS}: dropped")
        elif tag not in tags:
            if tag != str(item).strip().lower():
                imported.note(MANIFEST, f"Tags: {item!r} is written {tag}")
            tags.append(tag)
    return tags


def _logo(doc: dict, files: Members, manifest: dict, imported: Imported) -> None:
    name = doc.get("Logo", LOGO)
    if not isinstance(name, str) or name not in files.names:
        if "Logo" in doc:
            imported.note(MANIFEST, f"Logo: {name!r} is not in the package: no logo")
        return
    data = files.read(name, MAX_LOGO_BYTES)
    if len(data) > MAX_LOGO_BYTES:
        imported.note(name, f"larger than the catalog's {MAX_LOGO_BYTES // 1024} KiB: no logo")
    elif not data.startswith(PNG_MAGIC):
        imported.note(name, "not a PNG image: no logo")
    else:
        imported.files[LOGO] = data
        manifest["logo"] = LOGO


def _license(files: Members, manifest: dict, imported: Imported) -> None:
    if "LICENSE" not in files.names:
        return
    data = files.read("LICENSE", _LICENSE_BYTES)
    if len(data) > _LICENSE_BYTES:
        imported.note("LICENSE", "larger than 1 MiB: not copied, no license")
        return
    imported.files["LICENSE"] = data
    text = " ".join(data.decode("utf-8", errors="replace").split())
    if "Apache License Version 2.0" in text or "Apache License, Version 2.0" in text:
        manifest["license"] = "Apache-2.0"
    else:
        imported.note("LICENSE", "copied; not a license the importer recognises: no license")


def requirements(doc: dict, bound: dict[str, str], imported: Imported) -> None:
    """Report what becomes of `Require`: `bound` maps a package to the slot that binds it."""
    required = doc.get("Require") or {}
    if not isinstance(required, list | dict):
        imported.note(MANIFEST, "Require: neither a list nor a mapping: ignored")
        required = {}
    names = [str(n) for n in (required if isinstance(required, list) else list(required))]
    for fqn in names:
        if fqn in bound:
            imported.note(MANIFEST, f"Require.{fqn}: is the binding slot {bound[fqn]}")
    dropped = [fqn for fqn in names if fqn not in bound]
    if dropped:
        imported.note(
            MANIFEST,
            f"Require: {', '.join(dropped)} dropped: Murano libraries and hosts (or apps no"
            " property binds) have no catalog equivalent",
        )


# --- ui.yaml -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A ui.yaml form field, as far as a parameter uses it."""

    type: Any
    label: str | None
    description: str | None
    initial: Any
    required: Any


def ui_fields(doc: Any, source: str) -> tuple[dict[str, Field], str | None]:
    """The field feeding each property of the application, and the class ui.yaml creates."""
    if not isinstance(doc, dict):
        raise refusal(source, (), "must be a mapping with Application and Forms")
    fields: dict[tuple[str, str], Field] = {}
    forms = doc.get("Forms") or []
    if not isinstance(forms, list):
        raise refusal(source, ("Forms",), "must be a list of forms")
    for i, form in enumerate(forms):
        if not isinstance(form, dict):
            raise refusal(source, ("Forms", i), "must map a form's name to its fields")
        for form_name, spec in form.items():
            items = spec.get("fields") if isinstance(spec, dict) else None
            if not isinstance(items, list):
                raise refusal(source, ("Forms", i, str(form_name)), "must have a list of fields")
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    fields[(str(form_name), item["name"])] = Field(
                        item.get("type"),
                        _text(item.get("label")),
                        _text(item.get("description")),
                        item.get("initial"),
                        item.get("required", True),
                    )
    application = doc.get("Application") or {}
    if not isinstance(application, dict):
        raise refusal(source, ("Application",), "must map the properties to form fields")
    feeds = {}
    for prop, value in application.items():
        match = _FIELD_REF.fullmatch(value) if isinstance(value, str) else None
        if match and (match.group(1), match.group(2)) in fields:
            feeds[str(prop)] = fields[(match.group(1), match.group(2))]
    made = application.get("?")
    made_type = made.get("type") if isinstance(made, dict) else None
    return feeds, made_type if isinstance(made_type, str) else None


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def typed(value: Any, kind: str) -> Any:
    """A default as a value of the parameter's JSON type, or None when it does not fit one."""
    if value is None or value is MISSING:
        return None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        return {"true": True, "false": False}.get(str(value).lower())
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip() if isinstance(value, str) else ""
        return int(text) if re.fullmatch(r"-?[0-9]{1,15}", text) else None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, str | int | float) else None
