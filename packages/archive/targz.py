"""Tar.gz archives: one streaming validation pass, then member reads from checkpoints."""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from packages.archive.content import (
    GZIP_MAGIC,
    INFLATE_CHUNK,
    READ_CHUNK,
    Member,
    SizeBudget,
    check_ratio,
    scan,
)
from packages.archive.names import (
    NameRegistry,
    check_placement,
    is_root,
    normalise_name,
    printable,
)
from packages.archive.tarend import Recent, end_problem
from packages.errors import ArchiveLimitError, CorruptArchiveError, UnsafeMemberError
from packages.limits import KiB, Limits, MiB

# tar.gz members are re-read by decompressing again; these bound memory and re-read cost.
CACHE_MEMBER_BYTES = 1 * MiB  # members up to this size are kept in memory after validation...
CACHE_TOTAL_BYTES = 32 * MiB  # ...until together they reach this
CHECKPOINT_EVERY = 4 * MiB  # a decompressor snapshot (~40 KB) every this many tar bytes
TAR_OVERHEAD_PER_MEMBER = 4 * KiB  # headers and padding the tar stream may add per member
MAX_TAR_EXTENDED_HEADER = 64 * KiB  # pax and GNU long-name headers are read into memory whole


@dataclass(frozen=True)
class _Checkpoint:
    """Enough decompressor state to resume the tar stream at `produced` without starting over."""

    consumed: int  # compressed bytes the inflater has used
    fed: int  # compressed bytes read from the file; the copy keeps any it has not used yet
    produced: int
    inflater: zlib._Decompress


class _GzipStream:
    """The decompressed tar stream, counted against the limits as it is produced."""

    def __init__(
        self,
        fp: BinaryIO,
        size: int,
        limits: Limits,
        start: _Checkpoint | None = None,
        checkpoints: list[_Checkpoint] | None = None,
    ) -> None:
        self.fp, self.size, self.limits = fp, size, limits
        self.member = ""  # named in limit errors
        self.checkpoints = checkpoints
        self.stream_limit = limits.max_unpacked_bytes + TAR_OVERHEAD_PER_MEMBER * (
            limits.max_members + 1
        )
        if start is None:
            self.inflater, self.consumed, self.produced = zlib.decompressobj(31), 0, 0
        else:
            self.inflater = start.inflater.copy()
            self.consumed, self.produced = start.consumed, start.produced
        self.fed = start.fed if start else 0
        self.eof = False
        self._out = b""
        self._pos = 0
        self.recent = Recent(start=self.produced)

    def read(self, size: int = -1) -> bytes:
        while self._pos >= len(self._out) and not self.eof:
            self._step()
        if size < 0:
            size = len(self._out) - self._pos
        chunk = self._out[self._pos : self._pos + size]
        self._pos += len(chunk)
        return self.recent.record(chunk)

    def skip(self, count: int) -> None:
        while count > 0:
            chunk = self.read(min(count, INFLATE_CHUNK))
            if not chunk:
                raise CorruptArchiveError("truncated tar stream", path=self.member)
            count -= len(chunk)

    def _step(self) -> None:
        self._checkpoint()
        inflater = self.inflater
        data = inflater.unconsumed_tail
        if not data:
            self.fp.seek(self.fed)
            data = self.fp.read(READ_CHUNK)
            self.fed += len(data)
        try:
            out = inflater.decompress(data, INFLATE_CHUNK)
        except zlib.error as error:
            raise CorruptArchiveError(f"invalid gzip data: {error}", path=self.member) from None
        self.consumed = self.fed - len(inflater.unconsumed_tail) - len(inflater.unused_data)
        self.produced += len(out)
        self._out, self._pos = out, 0
        self._check_limits()
        if inflater.eof:
            self.eof = True
            self._check_end()
        elif not out and not data:
            raise CorruptArchiveError("truncated gzip stream", path=self.member)

    def _checkpoint(self) -> None:
        if self.checkpoints is None:
            return
        last = self.checkpoints[-1].produced if self.checkpoints else -CHECKPOINT_EVERY
        if self.produced - last >= CHECKPOINT_EVERY:
            self.checkpoints.append(
                _Checkpoint(self.consumed, self.fed, self.produced, self.inflater.copy())
            )

    def _check_limits(self) -> None:
        if self.produced > self.stream_limit:
            raise ArchiveLimitError(
                f"tar stream unpacks to more than {self.stream_limit} bytes", path=self.member
            )
        check_ratio(self.member, self.produced, self.consumed, self.limits)

    def _check_end(self) -> None:
        """Nothing may follow the gzip stream: not a second stream, not garbage."""
        self.fp.seek(self.consumed)
        if self.consumed == self.size:
            return
        if self.fp.read(2) == GZIP_MAGIC[:2]:
            raise CorruptArchiveError("a second gzip stream follows the first (concatenated)")
        raise CorruptArchiveError(
            f"{self.size - self.consumed} bytes of trailing data after the gzip stream"
        )


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile reads pax and GNU long-name headers into memory whole: bound them first."""

    def _proc_member(self, tarfile_: tarfile.TarFile):
        extended = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
        if self.type in (*extended, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK) and (
            self.size > MAX_TAR_EXTENDED_HEADER or self.size < 0
        ):
            raise ArchiveLimitError(
                f"extended header of {self.size} bytes, limit {MAX_TAR_EXTENDED_HEADER}",
                path=printable(self.name),
            )
        # tarfile's private hook for reading a member's headers; the stubs leave it out.
        return super()._proc_member(tarfile_)  # type: ignore[misc]


_TAR_SPECIAL = {
    tarfile.SYMTYPE: "symbolic link",
    tarfile.LNKTYPE: "hard link",
    tarfile.CHRTYPE: "device",
    tarfile.BLKTYPE: "device",
    tarfile.FIFOTYPE: "FIFO",
}
_TAR_ERRORS = (tarfile.TarError, EOFError, ValueError, OverflowError, RecursionError)


def _tar_is_dir(info: tarfile.TarInfo) -> bool:
    """Whether the member is a directory; refuses links, devices and every other type."""
    shown = printable(info.name)
    if info.type in _TAR_SPECIAL:
        target = f" to {printable(info.linkname)!r}" if info.issym() or info.islnk() else ""
        raise UnsafeMemberError(_TAR_SPECIAL[info.type] + target, path=shown)
    if info.sparse is not None or info.type == tarfile.GNUTYPE_SPARSE:
        raise UnsafeMemberError("sparse files are not supported", path=shown)
    if info.type == tarfile.DIRTYPE:
        if info.size:  # tarfile would not skip its data; other readers would
            raise CorruptArchiveError("directory entry with data", path=shown)
        return True
    if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        return False
    raise UnsafeMemberError(f"unsupported member type {info.type!r}", path=shown)


def _tar_members(tar: tarfile.TarFile, limits: Limits) -> Iterator[tarfile.TarInfo]:
    """Members one at a time, stopping as soon as there are too many."""
    count = 0
    while True:
        try:
            info = tar.next()
        except _TAR_ERRORS as error:
            raise CorruptArchiveError(f"malformed tar archive: {error}") from None
        if info is None:
            return
        count += 1
        if count > limits.max_members:
            raise ArchiveLimitError(
                f"archive has more than {limits.max_members} members", path=printable(info.name)
            )
        yield info


def _tar_data(tar: tarfile.TarFile, info: tarfile.TarInfo, name: str) -> Iterator[bytes]:
    try:
        data = tar.extractfile(info)
        if data is None:  # not a regular file: refused before this is reached
            raise CorruptArchiveError("member has no data", path=name)
        while chunk := data.read(READ_CHUNK):
            yield chunk
    except _TAR_ERRORS as error:
        raise CorruptArchiveError(f"malformed tar data: {error}", path=name) from None


def _check_tar_end(stream: _GzipStream, end: int) -> None:
    """After the last member only zero blocks may follow: no second archive, no garbage."""
    problem = end_problem(stream.recent.since(end), stream.read, marker=True)
    if problem:
        raise CorruptArchiveError(problem)


class TarValidation:
    """One pass over the tar stream: every header and every byte of data checked."""

    def __init__(self, fp: BinaryIO, size: int, limits: Limits) -> None:
        self.limits = limits
        self.checkpoints: list[_Checkpoint] = []
        self.stream = _GzipStream(fp, size, limits, checkpoints=self.checkpoints)
        self.names = NameRegistry()
        self.budget = SizeBudget(limits)
        self.cached = 0
        self.members: dict[str, Member] = {}

    def run(self) -> dict[str, Member]:
        try:
            # SIM115: nothing to close, it reads our stream. call-overload: the stubs want a
            # fileobj that can also write and seek, whatever the mode; "r|" only reads.
            tar = tarfile.open(  # type: ignore[call-overload]  # noqa: SIM115
                fileobj=self.stream,
                mode="r|",
                tarinfo=_BoundedTarInfo,
                encoding="utf-8",
                errors="surrogateescape",
            )
        except _TAR_ERRORS as error:
            raise CorruptArchiveError(
                f"the gzip stream does not hold a tar archive: {error}"
            ) from None
        for info in _tar_members(tar, self.limits):
            self.stream.member = printable(info.name)
            self._member(tar, info)
        _check_tar_end(self.stream, tar.offset)
        return self.members

    def _member(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        is_dir = _tar_is_dir(info)
        if is_root(info.name, is_dir):
            return
        name = normalise_name(info.name, is_dir, self.limits)
        self.names.add(name, is_dir)
        if is_dir:
            return
        check_placement(name)
        self.budget.declare(name, info.size)
        keep = info.size <= CACHE_MEMBER_BYTES and self.cached + info.size <= CACHE_TOTAL_BYTES
        member = Member(name, info.size, 0, info.offset_data)
        member.data = scan(member, _tar_data(tar, info, name), keep, learn_crc=True)
        self.cached += len(member.data or b"")
        self.members[name] = member


def tar_chunks(
    fp: BinaryIO, size: int, limits: Limits, checkpoints: list[_Checkpoint], member: Member
) -> Iterator[bytes]:
    """Decompress again from the last checkpoint before the member, then read just it."""
    start = max((c for c in checkpoints if c.produced <= member.offset), key=lambda c: c.produced)
    stream = _GzipStream(fp, size, limits, start=start)
    stream.member = member.name
    stream.skip(member.offset - start.produced)
    remaining = member.size
    while remaining:
        chunk = stream.read(min(READ_CHUNK, remaining))
        if not chunk:
            raise CorruptArchiveError("truncated member data", path=member.name)
        remaining -= len(chunk)
        yield chunk
