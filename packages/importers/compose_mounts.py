"""A Compose service's volumes, bind mounts, secrets and configs, as catalog volumes and files.

A named or anonymous volume stays a named volume; a bind of app data (a path beside the file,
under a data root such as /DATA/AppData, or a variable) becomes one with a line saying so,
unless it names a file or a small directory beside the Compose file, which is copied into the
package as `files:`. Binds of the host's system paths and sockets are refused. Nothing outside
the Compose file's directory, and no link, is ever read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from packages.importers.compose_context import MAX_COPIED_FILE, MAX_COPIED_FILES, Context, inside
from packages.importers.compose_values import (
    Mount,
    ValueProblem,
    host_path_problem,
    long_mount,
    short_mount,
    volume_slug,
)
from packages.problems import Path as KeyPath


def mounts(ctx: Context, base: KeyPath, name: str, spec: dict[str, Any]):
    volumes: list[dict[str, Any]] = []
    files: dict[str, str] = {}
    for i, entry in enumerate(spec.get("volumes") or []):
        path = (*base, "volumes", i)
        try:
            mount = long_mount(entry) if isinstance(entry, dict) else short_mount(str(entry))
        except ValueProblem as exc:
            ctx.found.add(path, str(exc))
            continue
        if mount.kind == "tmpfs":
            ctx.note(path, "dropped: a tmpfs mount is the container's own filesystem here")
            continue
        if mount.kind not in ("volume", "bind"):
            ctx.found.add(path, f"a {mount.kind} mount is not supported")
            continue
        volume = _volume(ctx, path, name, mount, files)
        if volume:
            volumes.append(
                {
                    "name": volume,
                    "path": mount.target,
                    **({"read_only": True} if mount.read_only else {}),
                }
            )
    return volumes, files


def _volume(
    ctx: Context, path: KeyPath, service: str, mount: Mount, files: dict[str, str]
) -> str | None:
    if not mount.source:
        slug = volume_slug(f"{service}-{mount.target}", ctx.taken_volumes)
        ctx.note(path, f"the anonymous volume at {mount.target} became the named volume {slug}")
        return slug
    if not mount.bind:
        if mount.source not in ctx.volumes:
            ctx.volumes[mount.source] = volume_slug(mount.source, ctx.taken_volumes)
        return ctx.volumes[mount.source]
    source, _ = ctx.params.resolve(mount.source)
    if source is not None and source.startswith("/") and (problem := host_path_problem(source)):
        ctx.unsafe(path, problem)
        return None
    if (
        source is not None
        and not source.startswith(("/", "~"))
        and _copy_in(ctx, path, service, source, mount.target, files)
    ):
        return None
    data = re.sub(r"^(?:\./|~/|/DATA/AppData/|/)", "", source or mount.source)
    slug = volume_slug(data.replace("/", "-"), ctx.taken_volumes)
    ctx.note(
        path,
        f"the bind mount of {mount.source} became the named volume {slug}: "
        "copy its data in after the first deploy",
    )
    return slug


def _copy_in(
    ctx: Context, path: KeyPath, service: str, source: str, target: str, files: dict[str, str]
) -> bool:
    """Copy a bind-mounted file or small directory beside the Compose file into `files:`."""
    found = inside(ctx.base, source)
    if found is None or found == ctx.base.resolve():  # the whole project: data, not config
        return False
    if found.is_file():
        members = [(found, target)]
    else:
        root = target.rstrip("/")
        members = [
            (p, f"{root}/{p.relative_to(found).as_posix()}")
            for p in sorted(found.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.resolve().is_relative_to(found)
        ]
    if any(_private(ctx, p) for p, _ in members):
        ctx.note(path, f"{source} holds a dotfile, an env file or a secret: not copied")
        return False
    if (
        not members
        or len(members) > MAX_COPIED_FILES
        or any(p.stat().st_size > MAX_COPIED_FILE for p, _ in members)
    ):
        return False
    for file, container_path in members:
        member = f"files/{service}/{file.relative_to(ctx.base.resolve()).as_posix()}"
        ctx.imported.files[member] = file.read_bytes()
        files[container_path] = member
    ctx.note(path, f"{source} copied into the package as files: ({len(members)} file(s))")
    return True


def _private(ctx: Context, file: Path) -> bool:
    relative = file.relative_to(ctx.base.resolve())
    return file in ctx.private or any(part.startswith(".") for part in relative.parts)


def secret_files(ctx: Context, base: KeyPath, spec: dict[str, Any]) -> dict[str, str]:
    files: dict[str, str] = {}
    for kind, root in (("secrets", "/run/secrets/"), ("configs", "/")):
        for i, entry in enumerate(spec.get(kind) or []):
            source = entry.get("source") if isinstance(entry, dict) else entry
            target = entry.get("target") if isinstance(entry, dict) else None
            if not isinstance(source, str):
                ctx.found.add((*base, kind, i), "names no source")
                continue
            member = ctx.extras.get(kind, {}).get(source)
            if member is None:
                ctx.found.add((*base, kind, i), f"{source} is not declared under {kind}")
                continue
            target = (
                target
                if isinstance(target, str) and target.startswith("/")
                else root + (target or source)
            )
            files[target] = member
    return files
