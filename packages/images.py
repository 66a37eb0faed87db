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

`loadable_tarball` then produces what the worker gives the engine: only the chosen image's
config and layers, re-read from the package, plus a new `manifest.json` whose only RepoTag is
the catalog-owned name. The tarball's own RepoTags, `repositories` file and `index.json`
never reach the engine, so loading can name nothing but the catalog's own tag.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from packages.archive import PackageArchive
from packages.archive.content import nested_archive_kind
from packages.archive.names import IMAGES_DIR, NameRegistry, is_root, normalise_name, printable
from packages.archive.tarend import Recording, end_problem
from packages.archive.targz import _BoundedTarInfo
from packages.errors import ArchiveLimitError, PackageError, Problem
from packages.imageref import normalise_reference
from packages.limits import DEFAULT_LIMITS, KiB, Limits

MANIFEST_JSON = "manifest.json"
OCI_INDEX = "index.json"
CHUNK = 64 * KiB
LAYER_NAME_MAX = 4096  # bytes of a path inside a layer: Linux's PATH_MAX
JSON_BUDGET_FACTOR = 8  # small JSON members kept while scanning: at most this many times the limit
_TAR_ERRORS = (tarfile.TarError, EOFError, ValueError, OverflowError, RecursionError)
_SPECIAL = {
    tarfile.SYMTYPE: "symbolic link",
    tarfile.LNKTYPE: "hard link",
    tarfile.CHRTYPE: "device file",
    tarfile.BLKTYPE: "device file",
    tarfile.FIFOTYPE: "FIFO",
}


class ImageError(PackageError):
    """A bundled image tarball is malformed, or does not hold the image asked for."""


class UnsafeImageError(ImageError):
    """A member of the tarball, or an entry of one of its layers, could escape its root."""


class ImageLimitError(ImageError):
    """Too many members, layers or entries, or JSON or a layer too large."""


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


# --- streams ------------------------------------------------------------------------------


class _Refused(Exception):
    """A problem found deep inside a stream, raised through tarfile and turned into an error."""

    def __init__(self, kind: type[ImageError], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _Prefixed(io.RawIOBase):
    """`head` (already read), then the rest of `stream`."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream
        self.count = 0  # bytes delivered

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
        else:
            data = self._stream.read(len(buffer))
            count = len(data)
            buffer[:count] = data
        self.count += count
        return count


class _Gunzip(io.RawIOBase):
    """A gzip stream decompressed in bounded steps, refused past `limit` bytes."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._inflater = zlib.decompressobj(31)
        self.count = 0  # bytes delivered, decompressed
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            self._step(len(buffer))
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def _step(self, size: int) -> None:
        data = self._inflater.unconsumed_tail
        if not data:
            data = self._stream.read(CHUNK)
            if not data:
                if self._inflater.eof:
                    self._eof = True
                    return
                raise _Refused(ImageError, "truncated gzip stream")
        try:
            out = self._inflater.decompress(data, max(size, CHUNK))
        except zlib.error as error:
            raise _Refused(ImageError, f"invalid gzip data: {error}") from None
        if self._inflater.eof and self._inflater.unused_data:
            rest = self._inflater.unused_data  # another gzip member follows: valid gzip
            self._inflater = zlib.decompressobj(31)
            self._stream = _Prefixed(rest, self._stream)  # type: ignore[assignment]
        self.count += len(out)
        if self.count > self._limit:
            raise _Refused(ImageLimitError, f"decompresses to more than {self._limit} bytes")
        self._pending = out


def _open_tar(stream: BinaryIO) -> tarfile.TarFile:
    return tarfile.open(
        fileobj=stream,  # type: ignore[arg-type]
        mode="r|",
        tarinfo=_BoundedTarInfo,  # extended headers bounded before they are read
        encoding="utf-8",
        errors="surrogateescape",
    )


def _next(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
    try:
        return tar.next()
    except ArchiveLimitError as error:  # an extended header over its bound
        raise _Refused(ImageLimitError, str(error)) from None
    except _TAR_ERRORS as error:
        raise _Refused(ImageError, f"malformed tar: {error}") from None


def _read_head(stream: BinaryIO, size: int = tarfile.BLOCKSIZE) -> bytes:
    head = b""
    while len(head) < size:
        chunk = stream.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


# --- layers -------------------------------------------------------------------------------


def _layer_kind(head: bytes) -> str | None:
    """The layer's kind: tar, gzip, another compression's name, or None (not an archive)."""
    if len(head) == tarfile.BLOCKSIZE and not any(head):
        return "tar"  # an empty tar: only its end-of-archive blocks
    return nested_archive_kind(head)


def _layer_name(raw: str) -> str:
    """The entry's path inside the root filesystem; refuses what could land outside it."""
    if not raw:
        raise _Refused(UnsafeImageError, "entry with an empty name (or '/')")
    shown = printable(raw)
    if len(raw.encode("utf-8", "surrogateescape")) > LAYER_NAME_MAX:
        raise _Refused(ImageLimitError, f"entry name longer than {LAYER_NAME_MAX} bytes")
    if raw.startswith("/"):
        raise _Refused(UnsafeImageError, f"{shown!r}: absolute path")
    if ".." in raw.split("/"):
        raise _Refused(UnsafeImageError, f"{shown!r}: path traversal ('..' segment)")
    return posixpath.normpath(raw)


def _climbs_out(name: str, target: str) -> bool:
    """Whether a relative link target, seen from `name`'s directory, leaves the root."""
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    return resolved == ".." or resolved.startswith("../")


def _check_layer_entry(info: tarfile.TarInfo, name: str, files: set[str], limits: Limits) -> None:
    shown = printable(info.name)
    if info.issym():
        if not info.linkname.startswith("/") and _climbs_out(name, info.linkname):
            raise _Refused(
                UnsafeImageError,
                f"{shown!r}: symbolic link to {printable(info.linkname)!r} escapes the root",
            )
        return
    if info.islnk():
        target = f"{shown!r}: hard link to {printable(info.linkname)!r}"
        if not limits.allow_layer_hardlinks:
            raise _Refused(UnsafeImageError, f"{target}: hard links are not allowed")
        try:
            linked = _layer_name(info.linkname)
        except _Refused:
            raise _Refused(UnsafeImageError, f"{target}: the target escapes the root") from None
        if linked not in files:
            raise _Refused(UnsafeImageError, f"{target}: not a file earlier in the layer")
        return
    if info.type in _SPECIAL:
        raise _Refused(UnsafeImageError, f"{shown!r}: {_SPECIAL[info.type]}")
    if info.sparse is not None or info.type == tarfile.GNUTYPE_SPARSE:
        raise _Refused(UnsafeImageError, f"{shown!r}: sparse files are not supported")
    if info.isreg():
        files.add(name)
    elif not info.isdir():
        raise _Refused(UnsafeImageError, f"{shown!r}: unsupported entry type {info.type!r}")


def _scan_layer(head: bytes, rest: BinaryIO, kind: str, limits: Limits) -> None:
    """Read every entry header of a layer (plain or gzip tar); raise _Refused on a problem."""
    source: _Prefixed | _Gunzip = _Prefixed(head, rest)
    if kind == "gzip":
        source = _Gunzip(io.BufferedReader(source, CHUNK), limits.max_layer_unpacked_bytes)  # type: ignore[arg-type]
    elif kind != "tar":
        raise _Refused(
            ImageError, f"is compressed with {kind}: only plain or gzip-compressed layers load"
        )
    reader = Recording(io.BufferedReader(source, CHUNK))  # type: ignore[arg-type]
    try:
        tar = _open_tar(reader)  # type: ignore[arg-type]
    except _TAR_ERRORS as error:
        raise _Refused(ImageError, f"is not a tar archive: {error}") from None
    files: set[str] = set()
    count = 0
    while (info := _next(tar)) is not None:
        count += 1
        if count > limits.max_layer_members:
            raise _Refused(ImageLimitError, f"has more than {limits.max_layer_members} entries")
        if info.isdir() and info.name in ("", ".", "./"):
            continue  # the root directory
        _check_layer_entry(info, _layer_name(info.name), files, limits)
    _check_complete(tar, source, reader)


def _check_complete(tar: tarfile.TarFile, source: _Prefixed | _Gunzip, reader: Recording) -> None:
    """A stream-mode tarfile skips data by reading it and stops quietly when it runs out, at
    a zero block or at a header with a bad checksum: what follows its last entry must be
    zeros to the end, or an entry hidden from this reader could reach the engine's."""
    if source.count < tar.offset:
        raise _Refused(ImageError, "is truncated: its last entry has less data than it declares")
    problem = end_problem(reader.recent.since(tar.offset), reader.read, marker=False)
    if problem:
        raise _Refused(UnsafeImageError, problem)


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
        self.layers: dict[str, _Refused | None] = {}  # layer-looking members: None when sound
        self.seen_index = False

    def fail(self, kind: type[ImageError], message: str) -> ImageError:
        return kind(message, path=self.name)

    def run(self, stream: BinaryIO) -> None:
        head = _read_head(stream)
        kind = nested_archive_kind(head)
        if kind and kind != "tar":
            raise self.fail(
                ImageError, f"is compressed ({kind}): bundle the plain output of `docker save`"
            )
        source = _Prefixed(head, stream)
        reader = Recording(io.BufferedReader(source, CHUNK))  # type: ignore[arg-type]
        try:
            tar = _open_tar(reader)  # type: ignore[arg-type]
        except _TAR_ERRORS:
            raise self.fail(ImageError, "is not a tar archive (`docker save` output)") from None
        count = 0
        while True:
            try:
                info = _next(tar)
                if info is None:
                    _check_complete(tar, source, reader)
                    return
            except _Refused as refused:
                raise self.fail(refused.kind, refused.message) from None
            count += 1
            if count > self.limits.max_image_members:
                raise self.fail(
                    ImageLimitError, f"has more than {self.limits.max_image_members} members"
                )
            try:
                self.member(tar, info)
            except _TAR_ERRORS as error:
                raise self.fail(ImageError, f"malformed tar: {error}") from None

    def member(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        shown = printable(info.name)
        if info.type in _SPECIAL:
            target = f" to {printable(info.linkname)!r}" if info.issym() or info.islnk() else ""
            raise self.fail(UnsafeImageError, f"member {shown!r}: {_SPECIAL[info.type]}{target}")
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
        head = _read_head(data)
        kind = _layer_kind(head)
        if kind is not None:
            try:
                _scan_layer(head, data, kind, self.limits)  # type: ignore[arg-type]
                self.layers[name] = None
            except _Refused as refused:
                self.layers[name] = refused
            except _TAR_ERRORS as error:
                self.layers[name] = _Refused(ImageError, f"is not a tar archive: {error}")
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


# --- what the engine is given -------------------------------------------------------------------


def _header(name: str, size: int, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = size, 0o644
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return bytes(-size % tarfile.BLOCKSIZE)


def loadable_tarball(
    stream: BinaryIO,
    tarball: ImageTarball,
    image: BundledImage,
    repo_tag: str,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[bytes]:
    """The tarball to load, as chunks: `image`'s config and layers, re-read from `stream`
    (the same member, read again from its start), and a manifest.json naming only `repo_tag`.

    Everything else of the original (other images, its RepoTags, `repositories`, `index.json`)
    is left out. A member whose size differs from what was checked is refused.
    """
    wanted = {image.config, *image.layers}
    emitted: set[str] = set()
    directories: set[str] = set()
    tar = _open_tar(io.BufferedReader(_Prefixed(b"", stream), CHUNK))  # type: ignore[arg-type]
    while True:
        try:
            info = _next(tar)
        except _Refused as refused:
            raise ImageError(refused.message, path=tarball.name) from None
        if info is None:
            break
        if not info.isreg() or info.sparse is not None or info.type in _SPECIAL:
            continue
        name = normalise_name(info.name, False, limits)
        if name not in wanted or name in emitted:
            continue
        if info.size != tarball.sizes.get(name):
            raise ImageError(f"member {name!r} changed since it was checked", path=tarball.name)
        parts = name.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in directories:
                directories.add(directory)
                yield _header(directory, 0, directory=True)
        yield _header(name, info.size)
        data = tar.extractfile(info)
        assert data is not None
        left = info.size
        while left:
            chunk = data.read(min(CHUNK, left))
            if not chunk:
                raise ImageError(f"member {name!r} is truncated", path=tarball.name)
            left -= len(chunk)
            yield chunk
        yield _padding(info.size)
        emitted.add(name)
    if wanted - emitted:
        missing = ", ".join(sorted(wanted - emitted))
        raise ImageError(f"members missing on a second read: {missing}", path=tarball.name)
    manifest = json.dumps(
        [{"Config": image.config, "RepoTags": [repo_tag], "Layers": list(image.layers)}]
    ).encode()
    yield _header(MANIFEST_JSON, len(manifest))
    yield manifest + _padding(len(manifest))
    yield bytes(2 * tarfile.BLOCKSIZE)
