"""Reading tar streams of bundled images: bounded gunzip, headers one by one, layer verdicts.

Nothing here extracts: entries are read as a stream, and a problem deep inside one is raised
as `Refused` through tarfile, to be turned into an ImageError naming the tarball.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import zlib
from typing import IO, BinaryIO

from packages.archive.content import nested_archive_kind
from packages.archive.names import printable
from packages.archive.tarend import Recording, end_problem
from packages.archive.targz import _BoundedTarInfo
from packages.errors import ArchiveLimitError, ImageError, ImageLimitError, UnsafeImageError
from packages.limits import KiB, Limits

CHUNK = 64 * KiB
LAYER_NAME_MAX = 4096  # bytes of a path inside a layer: Linux's PATH_MAX
TAR_ERRORS = (tarfile.TarError, EOFError, ValueError, OverflowError, RecursionError)
SPECIAL = {
    tarfile.SYMTYPE: "symbolic link",
    tarfile.LNKTYPE: "hard link",
    tarfile.CHRTYPE: "device file",
    tarfile.BLKTYPE: "device file",
    tarfile.FIFOTYPE: "FIFO",
}


class Refused(Exception):
    """A problem found deep inside a stream, raised through tarfile and turned into an error."""

    def __init__(self, kind: type[ImageError], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Prefixed(io.RawIOBase):
    """`head` (already read), then the rest of `stream`."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream
        self.count = 0  # bytes delivered

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
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


class Gunzip(io.RawIOBase):
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

    def readinto(self, buffer) -> int:
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
                raise Refused(ImageError, "truncated gzip stream")
        try:
            out = self._inflater.decompress(data, max(size, CHUNK))
        except zlib.error as error:
            raise Refused(ImageError, f"invalid gzip data: {error}") from None
        if self._inflater.eof and self._inflater.unused_data:
            rest = self._inflater.unused_data  # another gzip member follows: valid gzip
            self._inflater = zlib.decompressobj(31)
            self._stream = Prefixed(rest, self._stream)  # type: ignore[assignment]
        self.count += len(out)
        if self.count > self._limit:
            raise Refused(ImageLimitError, f"decompresses to more than {self._limit} bytes")
        self._pending = out


def open_tar(stream: BinaryIO | Recording) -> tarfile.TarFile:
    return tarfile.open(
        fileobj=stream,
        mode="r|",
        tarinfo=_BoundedTarInfo,  # extended headers bounded before they are read
        encoding="utf-8",
        errors="surrogateescape",
    )


def next_member(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
    try:
        return tar.next()
    except ArchiveLimitError as error:  # an extended header over its bound
        raise Refused(ImageLimitError, str(error)) from None
    except TAR_ERRORS as error:
        raise Refused(ImageError, f"malformed tar: {error}") from None


def read_head(stream: IO[bytes], size: int = tarfile.BLOCKSIZE) -> bytes:
    head = b""
    while len(head) < size:
        chunk = stream.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


# --- layers -------------------------------------------------------------------------------


def layer_kind(head: bytes) -> str | None:
    """The layer's kind: tar, gzip, another compression's name, or None (not an archive)."""
    if len(head) == tarfile.BLOCKSIZE and not any(head):
        return "tar"  # an empty tar: only its end-of-archive blocks
    return nested_archive_kind(head)


def _layer_name(raw: str) -> str:
    """The entry's path inside the root filesystem; refuses what could land outside it."""
    if not raw:
        raise Refused(UnsafeImageError, "entry with an empty name (or '/')")
    shown = printable(raw)
    if len(raw.encode("utf-8", "surrogateescape")) > LAYER_NAME_MAX:
        raise Refused(ImageLimitError, f"entry name longer than {LAYER_NAME_MAX} bytes")
    if raw.startswith("/"):
        raise Refused(UnsafeImageError, f"{shown!r}: absolute path")
    if ".." in raw.split("/"):
        raise Refused(UnsafeImageError, f"{shown!r}: path traversal ('..' segment)")
    return posixpath.normpath(raw)


def _climbs_out(name: str, target: str) -> bool:
    """Whether a relative link target, seen from `name`'s directory, leaves the root."""
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    return resolved == ".." or resolved.startswith("../")


def _check_layer_entry(info: tarfile.TarInfo, name: str, files: set[str], limits: Limits) -> None:
    shown = printable(info.name)
    if info.issym():
        if not info.linkname.startswith("/") and _climbs_out(name, info.linkname):
            raise Refused(
                UnsafeImageError,
                f"{shown!r}: symbolic link to {printable(info.linkname)!r} escapes the root",
            )
        return
    if info.islnk():
        target = f"{shown!r}: hard link to {printable(info.linkname)!r}"
        if not limits.allow_layer_hardlinks:
            raise Refused(UnsafeImageError, f"{target}: hard links are not allowed")
        try:
            linked = _layer_name(info.linkname)
        except Refused:
            raise Refused(UnsafeImageError, f"{target}: the target escapes the root") from None
        if linked not in files:
            raise Refused(UnsafeImageError, f"{target}: not a file earlier in the layer")
        return
    if info.type in SPECIAL:
        raise Refused(UnsafeImageError, f"{shown!r}: {SPECIAL[info.type]}")
    if info.sparse is not None or info.type == tarfile.GNUTYPE_SPARSE:
        raise Refused(UnsafeImageError, f"{shown!r}: sparse files are not supported")
    if info.isreg():
        files.add(name)
    elif not info.isdir():
        raise Refused(UnsafeImageError, f"{shown!r}: unsupported entry type {info.type!r}")


def scan_layer(head: bytes, rest: IO[bytes], kind: str, limits: Limits) -> None:
    """Read every entry header of a layer (plain or gzip tar); raise Refused on a problem."""
    source: Prefixed | Gunzip = Prefixed(head, rest)
    if kind == "gzip":
        source = Gunzip(io.BufferedReader(source, CHUNK), limits.max_layer_unpacked_bytes)
    elif kind != "tar":
        raise Refused(
            ImageError, f"is compressed with {kind}: only plain or gzip-compressed layers load"
        )
    reader = Recording(io.BufferedReader(source, CHUNK))
    try:
        tar = open_tar(reader)
    except TAR_ERRORS as error:
        raise Refused(ImageError, f"is not a tar archive: {error}") from None
    files: set[str] = set()
    count = 0
    while (info := next_member(tar)) is not None:
        count += 1
        if count > limits.max_layer_members:
            raise Refused(ImageLimitError, f"has more than {limits.max_layer_members} entries")
        if info.isdir() and info.name in ("", ".", "./"):
            continue  # the root directory
        _check_layer_entry(info, _layer_name(info.name), files, limits)
    check_complete(tar, source, reader)


def check_complete(tar: tarfile.TarFile, source: Prefixed | Gunzip, reader: Recording) -> None:
    """A stream-mode tarfile skips data by reading it and stops quietly when it runs out, at
    a zero block or at a header with a bad checksum: what follows its last entry must be
    zeros to the end, or an entry hidden from this reader could reach the engine's."""
    if source.count < tar.offset:
        raise Refused(ImageError, "is truncated: its last entry has less data than it declares")
    problem = end_problem(reader.recent.since(tar.offset), reader.read, marker=False)
    if problem:
        raise Refused(UnsafeImageError, problem)
