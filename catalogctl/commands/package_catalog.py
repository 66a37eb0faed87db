"""`catalogctl package` in the catalog: list, show, versions, update, yank, delete, download,
logo. The group (package.py) adds them."""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

import click
import requests

from catalogctl.client import path
from catalogctl.context import api, api_options, complete_package, confirm, yes_option
from catalogctl.output import done, record, show, show_list, table, when

PACKAGE_COLUMNS = (
    ("NAME", "name"),
    ("VERSION", "latest_version"),
    ("TYPE", "type"),
    ("VISIBILITY", "visibility"),
    ("OWNER", "owner"),
    ("TITLE", "title"),
)
VERSION_COLUMNS = (
    ("VERSION", "version"),
    ("YANKED", "yanked"),
    ("SIZE", "size"),
    ("PUBLISHED", lambda v: when(v.get("created_at"))),
    ("DIGEST", "digest"),
)


@click.command("list")
@click.option("-q", "--query", help="Words to search for in name, title, description and tags.")
@click.option("--category", help="Only packages in this category.")
@click.option("--tag", help="Only packages with this tag.")
@click.option("--type", "kind", type=click.Choice(["application", "library"]))
@click.option("--owned", is_flag=True, help="Only the packages of the token's tenant.")
@click.option(
    "--sort", type=click.Choice(["name", "-created", "-updated"]), default="name", show_default=True
)
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@api_options
def list_command(query, category, tag, kind, owned, sort, limit) -> None:
    """Search the packages this token may see."""
    params = {"q": query, "category": category, "tag": tag, "type": kind, "sort": sort}
    if owned:
        params["owned"] = "true"
    items = api().pages("/packages", params, limit)
    show_list(items, PACKAGE_COLUMNS)


def _show_package(item: dict) -> None:
    record(
        item,
        (
            ("name", "name"),
            ("title", "title"),
            ("description", "description"),
            ("type", "type"),
            ("owner", "owner"),
            ("visibility", "visibility"),
            ("enabled", "enabled"),
            ("tags", "tags"),
            ("categories", "categories"),
            ("latest version", "latest_version"),
            ("logo", "has_logo"),
        ),
    )
    click.echo("")
    table(item.get("versions") or [], VERSION_COLUMNS)


def _show_version(item: dict) -> None:
    manifest = item.get("manifest") or {}
    record(
        item,
        (
            ("package", "package"),
            ("version", "version"),
            ("title", lambda _: manifest.get("title")),
            ("yanked", "yanked"),
            ("digest", "digest"),
            ("size", "size"),
            ("published", lambda v: when(v.get("created_at"))),
            ("services", lambda _: sorted(manifest.get("services") or {})),
            ("bindings", lambda _: sorted(manifest.get("bindings") or {})),
            ("actions", lambda _: sorted(manifest.get("actions") or {})),
        ),
    )
    properties = (item.get("parameters") or {}).get("properties") or {}
    if properties:
        click.echo("")
        required = set((item.get("parameters") or {}).get("required") or [])
        rows = [
            {
                "name": name,
                "type": spec.get("type"),
                "default": "(secret)" if spec.get("x-secret") else spec.get("default"),
                "required": name in required,
                "description": spec.get("description"),
            }
            for name, spec in properties.items()
        ]
        table(
            rows,
            [("PARAMETER", "name"), ("TYPE", "type"), ("REQUIRED", "required"),
             ("DEFAULT", "default"), ("DESCRIPTION", "description")],
        )  # fmt: skip


@click.command("show")
@click.argument("name", shell_complete=complete_package)
@click.argument("version", required=False)
@api_options
def show_command(name: str, version: str | None) -> None:
    """A package with its versions, or one VERSION: digest, services, parameters."""
    if version is None:
        show(api().json("GET", path("packages", name)), _show_package)
    else:
        show(api().json("GET", path("packages", name, "versions", version)), _show_version)


@click.command("versions")
@click.argument("name", shell_complete=complete_package)
@api_options
def versions_command(name: str) -> None:
    """The versions of a package, newest first."""
    show_list(api().json("GET", path("packages", name, "versions"))["items"], VERSION_COLUMNS)


@click.command("update")
@click.argument("name", shell_complete=complete_package)
@click.option("--title")
@click.option("--description")
@click.option("--tag", "tags", multiple=True, help="Replaces the tags; repeat for more.")
@click.option("--no-tags", is_flag=True, help="Remove every tag.")
@click.option("--category", "categories", multiple=True, help="Replaces the categories.")
@click.option("--no-categories", is_flag=True, help="Remove every category.")
@click.option("--visibility", type=click.Choice(["private", "public"]))
@click.option("--enable/--disable", "enabled", default=None, help="Whether it can be deployed.")
@api_options
def update_command(
    name, title, description, tags, no_tags, categories, no_categories, visibility, enabled
) -> None:
    """Change a package's metadata (its owner, or an admin)."""
    changes = {
        key: value
        for key, value in (
            ("title", title),
            ("description", description),
            ("visibility", visibility),
            ("enabled", enabled),
            ("tags", [] if no_tags else list(tags) or None),
            ("categories", [] if no_categories else list(categories) or None),
        )
        if value is not None
    }
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    updated = api().json("PATCH", path("packages", name), json=changes)
    done(f"updated {name}", updated)


@click.command("yank")
@click.argument("name", shell_complete=complete_package)
@click.argument("version")
@click.option("--undo", is_flag=True, help="Unyank: offer the version again.")
@api_options
def yank_command(name: str, version: str, undo: bool) -> None:
    """Hide a version from resolution (apps pinned to it keep deploying it)."""
    body = {"yanked": not undo}
    updated = api().json("PATCH", path("packages", name, "versions", version), json=body)
    done(f"{'unyanked' if undo else 'yanked'} {name} {version}", updated)


@click.command("delete")
@click.argument("name", shell_complete=complete_package)
@click.argument("version", required=False)
@yes_option
@api_options
def delete_command(name: str, version: str | None, yes: bool) -> None:
    """Delete a package with all its versions, or one VERSION (refused while deployed)."""
    what = f"{name} {version}" if version else f"package {name} and all its versions"
    confirm(f"Delete {what}", yes)
    segments = ("packages", name, "versions", version) if version else ("packages", name)
    api().json("DELETE", path(*segments))
    done(f"deleted {what}")


def _save(response, target: Path | None, default_name: str) -> None:
    if target is not None and str(target) == "-":
        for chunk in response.iter_content(64 * 1024):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    target = target or Path(default_name)
    with target.open("wb") as out:
        for chunk in response.iter_content(64 * 1024):
            out.write(chunk)
    click.echo(f"wrote {target} ({target.stat().st_size} bytes)", err=True)


def target_option(default: str):
    """`-f/--file`: where a download is written."""
    return click.option(
        "-f",
        "--file",
        "target",
        type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
        help=f"Where to write (- for standard output); default: {default}.",
    )


@click.command("download")
@click.argument("name", shell_complete=complete_package)
@click.argument("version")
@target_option("the archive's name, here")
@api_options
def download_command(name: str, version: str, target: Path | None) -> None:
    """Download a version's archive exactly as it was published."""
    response = api().request(
        "GET", path("packages", name, "versions", version, "archive"), stream=True
    )
    with response:
        disposition = response.headers.get("Content-Disposition", "")
        default = disposition.rpartition("filename=")[2].strip('"') or f"{name}-{version}.tar.gz"
        what = f"{name} {version}"
        expected = _sent_digest(response)
        if expected is None:
            raise click.ClickException(
                f"{what}: the catalog sent no digest of the archive (no Digest or ETag "
                "header), so it cannot be verified; nothing was written"
            )
        _save_verified(response, target, Path(default).name, what, expected)


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _sent_digest(response) -> str | None:
    """The archive's sha256 (hex) the API sent: `Digest: sha-256=<hex>`, else the ETag."""
    for part in response.headers.get("Digest", "").split(","):
        algorithm, _, value = part.strip().partition("=")
        if algorithm.lower() == "sha-256" and _SHA256_HEX.fullmatch(value.lower()):
            return value.lower()
    etag = response.headers.get("ETag", "").strip('"').lower()  # a weak one ("W/") is no digest
    return etag if _SHA256_HEX.fullmatch(etag) else None


def _save_verified(
    response, target: Path | None, default_name: str, what: str, expected: str
) -> None:
    """Write the download only once its sha256 is `expected`: into a temporary file beside the
    target, renamed into place (or copied to standard output) after the check."""
    to_stdout = target is not None and str(target) == "-"
    target = target or Path(default_name)
    fd, name = tempfile.mkstemp(
        dir=None if to_stdout else target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    partial = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            received = _copy_hashing(response, out, what)
        if received != expected:
            raise click.ClickException(
                f"{what}: the archive received does not match its digest (expected "
                f"sha256:{expected}, received sha256:{received}); nothing was written"
            )
        if to_stdout:
            with partial.open("rb") as verified:
                while chunk := verified.read(64 * 1024):
                    sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return
        umask = os.umask(0)
        os.umask(umask)
        partial.chmod(0o666 & ~umask)  # as a file opened for writing would be (mkstemp: 0600)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"wrote {target} ({target.stat().st_size} bytes, digest verified)", err=True)


def _copy_hashing(response, out: BinaryIO, what: str) -> str:
    """Copy the response body into `out`; the sha256 (hex) of what was received."""
    digest = hashlib.sha256()
    try:
        for chunk in response.iter_content(64 * 1024):
            digest.update(chunk)
            out.write(chunk)
    except requests.RequestException as exc:
        raise click.ClickException(
            f"{what}: the download broke off ({type(exc).__name__}); nothing was written"
        ) from None
    return digest.hexdigest()


@click.command("logo")
@click.argument("name", shell_complete=complete_package)
@target_option("NAME.png here")
@api_options
def logo_command(name: str, target: Path | None) -> None:
    """Download a package's logo (PNG)."""
    response = api().request("GET", path("packages", name, "logo"), stream=True)
    with response:
        _save(response, target, f"{name}.png")


COMMANDS = (
    list_command,
    show_command,
    versions_command,
    update_command,
    yank_command,
    delete_command,
    download_command,
    logo_command,
)
