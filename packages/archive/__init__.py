"""Safe, fully validated, read-only access to package archives (zip and tar.gz)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from typing import BinaryIO

from packages.archive.content import GZIP_MAGIC, READ_CHUNK, ZIP_MAGIC, Member, verified
from packages.archive.names import printable
from packages.archive.targz import TarValidation, tar_chunks
from packages.archive.zipformat import validate_zip, zip_chunks
from packages.errors import ArchiveLimitError, CorruptArchiveError, PackageError
from packages.limits import DEFAULT_LIMITS, Limits

__all__ = ["MemberNotFoundError", "PackageArchive", "open_archive", "sniff_kind"]


class MemberNotFoundError(PackageError, KeyError):
    """`read` or `open` asked for a name that is not a regular file of the archive."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return BaseException.__str__(self)


def sniff_kind(head: bytes) -> str | None:
    """The archive's kind judged from its first bytes: "zip", "tar.gz", or None."""
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(GZIP_MAGIC):
        return "tar.gz"
    return None


class _ChunkReader(io.RawIOBase):
    """A read-only file object over an iterator of chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._left:
            self._left = next(self._chunks, b"")
            if not self._left:
                return 0
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        return count


class PackageArchive:
    """A validated, read-only view of a package archive. Not safe to share between threads."""

    def __init__(
        self,
        kind: str,
        fp: BinaryIO,
        owns_fp: bool,
        members: dict[str, Member],
        chunks: Callable[[Member], Iterator[bytes]],
    ) -> None:
        self.kind = kind
        self.names: list[str] = sorted(members)
        self._fp = fp
        self._owns_fp = owns_fp
        self._members = members
        self._chunks = chunks
        self._closed = False

    def _member(self, name: str) -> Member:
        if self._closed:
            raise ValueError("the archive is closed")
        try:
            return self._members[name]
        except KeyError:
            raise MemberNotFoundError("no such file in the archive", path=printable(name)) from None

    def size_of(self, name: str) -> int:
        """The member's size in bytes, unpacked."""
        return self._member(name).size

    def read(self, name: str) -> bytes:
        """The member's content, checked again against what was validated."""
        member = self._member(name)
        if member.data is not None:
            return member.data
        return b"".join(verified(member, self._chunks(member)))

    def open(self, name: str) -> BinaryIO:
        """The member's content as a stream, for members too large to hold in memory."""
        member = self._member(name)
        if member.data is not None:
            return io.BytesIO(member.data)
        reader = _ChunkReader(verified(member, self._chunks(member)))
        return io.BufferedReader(reader, READ_CHUNK)

    def close(self) -> None:
        """Release the file if `open_archive` opened it; a stream passed in stays open."""
        self._closed = True
        if self._owns_fp:
            self._fp.close()

    def __enter__(self) -> PackageArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _open_source(source: str | os.PathLike | BinaryIO, limits: Limits) -> tuple[BinaryIO, bool]:
    """A seekable file object over the whole archive, and whether we must close it."""
    if isinstance(source, str | os.PathLike):
        # PackageArchive.close closes it.
        return open(source, "rb"), True
    if getattr(source, "seekable", lambda: False)():
        return source, False
    # A pipe or socket: buffer it in memory (never on disk), bounded by the archive limit.
    data = source.read(limits.max_archive_bytes + 1)
    return io.BytesIO(data), False


def _archive_size(fp: BinaryIO, limits: Limits) -> int:
    size = fp.seek(0, os.SEEK_END)
    if size > limits.max_archive_bytes:
        raise ArchiveLimitError(f"archive is {size} bytes, limit {limits.max_archive_bytes}")
    return size


def open_archive(
    source: str | os.PathLike | BinaryIO, limits: Limits = DEFAULT_LIMITS
) -> PackageArchive:
    """Validate the whole archive, then return a read-only view of it.

    A stream must hold the archive from its byte 0; it is not closed by `close`.
    """
    fp, owns_fp = _open_source(source, limits)
    try:
        size = _archive_size(fp, limits)
        fp.seek(0)
        kind = sniff_kind(fp.read(len(GZIP_MAGIC) + 1))
        if kind == "zip":
            members = validate_zip(fp, size, limits)
            return PackageArchive(kind, fp, owns_fp, members, lambda m: zip_chunks(fp, m))
        if kind == "tar.gz":
            validation = TarValidation(fp, size, limits)
            members = validation.run()
            checkpoints = validation.checkpoints

            def chunks(member: Member) -> Iterator[bytes]:
                return tar_chunks(fp, size, limits, checkpoints, member)

            return PackageArchive(kind, fp, owns_fp, members, chunks)
        raise CorruptArchiveError("not a zip or tar.gz archive")
    except BaseException:
        if owns_fp:
            fp.close()
        raise
