"""Bundled image tarballs (`docker save` output under images/): checked before any engine sees them.

A package may bundle images for sites without a registry (ARCHITECTURE §4). The tarball is read
as a stream, never extracted, and refused unless:

- it is a plain tar of regular files and directories only: no links, devices or FIFOs, no
  absolute or `..` names, no duplicates, a bounded number of members (`Limits`);
- its `manifest.json` is a list of `{Config, RepoTags, Layers}` whose paths name regular
  members of the tarball itself, with at most `max_image_layers` layers and no foreign layers;
- every config is a JSON object whose `rootfs.diff_ids` are as many as the layers;
- every layer is a tar (plain or gzip) whose entries stay inside the root filesystem: no
  absolute or `..` names, no devices or FIFOs, no symlink whose relative target climbs out of
  the root, and no hard links (unless `Limits.allow_layer_hardlinks`, then only to an earlier
  regular file of the same layer). Symlinks are normal in root filesystems and are allowed;
- the requested `tag` is among the RepoTags (or, without a tag, the tarball holds one image).

An OCI image layout with only `index.json` (no `manifest.json`) is refused: the engines the
catalog supports load `docker save` tarballs. Tarballs from Docker 25+ carry both; their
`manifest.json` is what is checked and loaded.

`loadable_tarball` (packages.image_load) then produces what the worker gives the engine: only
the chosen image's config and layers, re-read from the package, plus a new `manifest.json`
whose only RepoTag is the catalog-owned name. The tarball's own RepoTags, `repositories` file
and `index.json` never reach the engine, so loading can name nothing but the catalog's own tag.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from packages.archive import PackageArchive
from packages.archive.content import nested_archive_kind
from packages.archive.names import IMAGES_DIR, NameRegistry, is_root, normalise_name, printable
from packages.archive.tarend import Recording
from packages.errors import ImageError, ImageLimitError, PackageError, Problem, UnsafeImageError
from packages.image_streams import (
    CHUNK,
    SPECIAL,
    TAR_ERRORS,
    Prefixed,
    Refused,
    check_complete,
    layer_kind,
    next_member,
    open_tar,
    read_head,
    scan_layer,
)
from packages.imageref import normalise_reference
from packages.limits import DEFAULT_LIMITS, Limits

# The error classes are packages.errors'; importable from here, where they are raised.
__all__ = [
    "BundledImage",
    "ImageError",
    "ImageLimitError",
    "ImageTarball",
    "UnsafeImageError",
    "bundled_selections",
    "check_bundled_images",
    "check_image_tarball",
]

MANIFEST_JSON = "manifest.json"
OCI_INDEX = "index.json"
JSON_BUDGET_FACTOR = 8  # small JSON members kept while scanning: at most this many times the limit


@dataclass(frozen=True)
class BundledImage:
    """One entry of `manifest.json`: paths are normalised member names of the tarball."""

    config: str
    layers: tuple[str, ...]
    repo_tags: tuple[str, ...]
    config_digest: str  # "sha256:<hex>" of the config: the image id on a classic engine


@dataclass(frozen=True)
class ImageTarball:
    """A checked `docker save` tarball: its images and the sizes of its regular members."""

    name: str  # the member of the package, for messages
    images: tuple[BundledImage, ...]
    sizes: Mapping[str, int] = field(repr=False)

    def select(self, tag: str | None) -> BundledImage:
        """The image `tag` names (Docker Hub's defaults understood), or the only one."""
        held = sorted({t for image in self.images for t in image.repo_tags})
        listing = f" (it has: {', '.join(held)})" if held else " (its images carry no tags)"
        if tag is None:
            if len(self.images) == 1:
                return self.images[0]
            raise ImageError(
                f"holds {len(self.images)} images: say which one with `tag`{listing}",
                path=self.name,
            )
        wanted = normalise_reference(tag)
        for image in self.images:
            if wanted in {normalise_reference(t) for t in image.repo_tags}:
                return image
        raise ImageError(f"holds no image tagged {tag!r}{listing}", path=self.name)


# --- the tarball ----------------------------------------------------------------------------


class _Scan:
    """One streaming pass over the tarball: names, sizes, small JSON members, layer verdicts."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.name = name
        self.limits = limits
        self.registry = NameRegistry()
        self.sizes: dict[str, int] = {}
        self.json: dict[str, bytes] = {}
        self.json_left = limits.max_image_json_bytes * JSON_BUDGET_FACTOR
        self.layers: dict[str, Refused | None] = {}  # layer-looking members: None when sound
        self.seen_index = False

    def fail(self, kind: type[ImageError], message: str) -> ImageError:
        return kind(message, path=self.name)

    def run(self, stream: BinaryIO) -> None:
        head = read_head(stream)
        kind = nested_archive_kind(head)
        if kind and kind != "tar":
            raise self.fail(
                ImageError, f"is compressed ({kind}): bundle the plain output of `docker save`"
            )
        source = Prefixed(head, stream)
        reader = Recording(io.BufferedReader(source, CHUNK))
        try:
            tar = open_tar(reader)
        except TAR_ERRORS:
            raise self.fail(ImageError, "is not a tar archive (`docker save` output)") from None
        count = 0
        while True:
            try:
                info = next_member(tar)
                if info is None:
                    check_complete(tar, source, reader)
                    return
            except Refused as refused:
                raise self.fail(refused.kind, refused.message) from None
            count += 1
            if count > self.limits.max_image_members:
                raise self.fail(
                    ImageLimitError, f"has more than {self.limits.max_image_members} members"
                )
            try:
                self.member(tar, info)
            except TAR_ERRORS as error:
                raise self.fail(ImageError, f"malformed tar: {error}") from None

    def member(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        shown = printable(info.name)
        if info.type in SPECIAL:
            target = f" to {printable(info.linkname)!r}" if info.issym() or info.islnk() else ""
            raise self.fail(UnsafeImageError, f"member {shown!r}: {SPECIAL[info.type]}{target}")
        if info.sparse is not None or not (info.isreg() or info.isdir()):
            raise self.fail(UnsafeImageError, f"member {shown!r}: unsupported type {info.type!r}")
        if is_root(info.name, info.isdir()) or (info.isdir() and info.name == "."):
            return
        try:
            name = normalise_name(info.name, info.isdir(), self.limits)
            self.registry.add(name, info.isdir())
        except PackageError as error:
            problem = error.problems[0]
            kind = UnsafeImageError if "limit" not in problem.message else ImageLimitError
            raise self.fail(kind, f"member {problem.path!r}: {problem.message}") from None
        if info.isdir():
            return
        if info.size > self.limits.max_member_bytes:
            raise self.fail(
                ImageLimitError,
                f"member {name!r} is {info.size} bytes, limit {self.limits.max_member_bytes}",
            )
        self.sizes[name] = info.size
        if name == OCI_INDEX:
            self.seen_index = True
        data = tar.extractfile(info)
        assert data is not None  # a regular file
        head = read_head(data)
        layer = layer_kind(head)
        if layer is not None:
            try:
                scan_layer(head, data, layer, self.limits)
                self.layers[name] = None
            except Refused as refused:
                self.layers[name] = refused
            except TAR_ERRORS as error:
                self.layers[name] = Refused(ImageError, f"is not a tar archive: {error}")
        elif info.size <= min(self.limits.max_image_json_bytes, self.json_left):
            content = head + data.read()
            self.json_left -= len(content)
            self.json[name] = content

    # -- after the pass --------------------------------------------------------------------

    def images(self) -> tuple[BundledImage, ...]:
        if MANIFEST_JSON not in self.sizes:
            if self.seen_index:
                raise self.fail(
                    ImageError,
                    "is an OCI image layout (index.json without manifest.json), which the "
                    "engine cannot load: bundle the output of `docker save`",
                )
            raise self.fail(ImageError, "is not a `docker save` tarball: manifest.json is missing")
        entries = self.json_document(MANIFEST_JSON, "manifest.json")
        if not isinstance(entries, list) or not entries:
            raise self.fail(ImageError, "manifest.json must be a non-empty list of images")
        return tuple(self.image(i, entry) for i, entry in enumerate(entries))

    def json_document(self, name: str, what: str) -> Any:
        if name not in self.json:
            if self.sizes[name] > self.limits.max_image_json_bytes:
                raise self.fail(
                    ImageLimitError,
                    f"{what} is {self.sizes[name]} bytes, limit {self.limits.max_image_json_bytes}",
                )
            raise self.fail(ImageError, f"{what} is not JSON")
        try:
            return json.loads(self.json[name])
        except (ValueError, RecursionError):
            raise self.fail(ImageError, f"{what} is not valid JSON") from None

    def image(self, index: int, entry: Any) -> BundledImage:
        where = f"manifest.json[{index}]"
        if not isinstance(entry, dict):
            raise self.fail(ImageError, f"{where} must be an object with Config, RepoTags, Layers")
        if entry.get("LayerSources"):
            raise self.fail(ImageError, f"{where}: foreign layers (LayerSources) are not supported")
        tags = entry.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise self.fail(ImageError, f"{where}.RepoTags must be a list of strings")
        layers = entry.get("Layers")
        if not isinstance(layers, list):
            raise self.fail(ImageError, f"{where}.Layers must be a list of paths")
        if len(layers) > self.limits.max_image_layers:
            raise self.fail(
                ImageLimitError,
                f"{where} has {len(layers)} layers, limit {self.limits.max_image_layers}",
            )
        config = self.path(f"{where}.Config", entry.get("Config"))
        paths = tuple(self.path(f"{where}.Layers[{i}]", p) for i, p in enumerate(layers))
        document = self.json_document(config, f"config {config!r} ({where}.Config)")
        if not isinstance(document, dict):
            raise self.fail(ImageError, f"config {config!r} ({where}.Config) is not a JSON object")
        self.check_diff_ids(where, config, document, len(paths))
        for i, path in enumerate(paths):
            self.check_layer(f"{where}.Layers[{i}]", path)
        digest = "sha256:" + hashlib.sha256(self.json[config]).hexdigest()
        return BundledImage(config, paths, tuple(tags), digest)

    def path(self, where: str, value: Any) -> str:
        """A path of manifest.json: relative, inside the tarball, naming a regular member."""
        if not isinstance(value, str) or not value:
            raise self.fail(ImageError, f"{where} must be a path inside the tarball")
        shown = printable(value)
        try:
            name = normalise_name(value, False, self.limits)
        except PackageError as error:
            message = error.problems[0].message
            raise self.fail(
                UnsafeImageError, f"{where} {shown!r} points outside the tarball: {message}"
            ) from None
        if name not in self.sizes:
            raise self.fail(ImageError, f"{where} {shown!r} is not a file of the tarball")
        return name

    def check_diff_ids(self, where: str, config: str, document: dict, count: int) -> None:
        rootfs = document.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list):
            raise self.fail(ImageError, f"config {config!r} has no rootfs.diff_ids list")
        if len(diff_ids) != count:
            raise self.fail(
                ImageError,
                f"config {config!r} lists {len(diff_ids)} layers (rootfs.diff_ids), "
                f"{where}.Layers {count}",
            )

    def check_layer(self, where: str, path: str) -> None:
        if path not in self.layers:
            raise self.fail(ImageError, f"layer {path!r} ({where}) is not a tar archive")
        refused = self.layers[path]
        if refused is not None:
            raise self.fail(refused.kind, f"layer {path!r} ({where}): {refused.message}")


def check_image_tarball(
    stream: BinaryIO, name: str, limits: Limits = DEFAULT_LIMITS
) -> ImageTarball:
    """Check a `docker save` tarball read from `stream`; `name` is its member, for messages.

    Raises ImageError (or UnsafeImageError, ImageLimitError) naming the tarball and the problem.
    """
    scan = _Scan(name, limits)
    scan.run(stream)
    return ImageTarball(name, scan.images(), dict(scan.sizes))


# --- the package as a whole -------------------------------------------------------------------


def bundled_selections(services: Mapping[str, Any]) -> dict[str, list[tuple[str, str | None]]]:
    """tarball -> [(service, tag or None)] for every service whose image is bundled."""
    wanted: dict[str, list[tuple[str, str | None]]] = {}
    for service, spec in sorted(services.items()):
        image = spec.get("image") if isinstance(spec, dict) else None
        if isinstance(image, dict) and isinstance(image.get("bundled"), str):
            wanted.setdefault(image["bundled"], []).append((service, image.get("tag")))
    return wanted


def check_bundled_images(
    archive: PackageArchive, services: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS
) -> None:
    """Check every images/*.tar of the package, and the image each service picks from one.

    One problem per tarball (the first found) and per service whose tag is missing.
    """
    wanted = bundled_selections(services)
    problems: list[Problem] = []
    kinds: set[type[ImageError]] = set()
    for name in archive.names:
        if not (name.startswith(IMAGES_DIR) and name.endswith(".tar")):
            continue
        try:
            with archive.open(name) as stream:
                tarball = check_image_tarball(stream, name, limits)
        except ImageError as error:
            problems += error.problems
            kinds.add(type(error))
            continue
        for service, tag in wanted.get(name, []):
            try:
                tarball.select(tag)
            except ImageError as error:
                where = f"services.{service}.image.{'tag' if tag else 'bundled'}"
                problems += [Problem(where, f"{name} {p.message}") for p in error.problems]
                kinds.add(ImageError)
    if problems:
        raise (kinds.pop() if len(kinds) == 1 else ImageError)(problems)
