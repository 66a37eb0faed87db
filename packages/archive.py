"""Safe, fully validated, read-only access to package archives (zip and tar.gz)."""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import tarfile
import unicodedata
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from packages.errors import (
    ArchiveLimitError,
    CorruptArchiveError,
    DuplicateMemberError,
    PackageError,
    UnsafeMemberError,
)
from packages.limits import DEFAULT_LIMITS, KiB, Limits, MiB

__all__ = ["MemberNotFoundError", "PackageArchive", "open_archive", "sniff_kind"]

READ_CHUNK = 64 * KiB  # compressed bytes read from the archive at a time
INFLATE_CHUNK = 256 * KiB  # most bytes one decompression step may produce, so a bomb never runs
HEAD_BYTES = 512  # enough of a member's content to recognise any archive inside it
IMAGES_DIR = "images/"

# tar.gz members are re-read by decompressing again; these bound memory and re-read cost.
CACHE_MEMBER_BYTES = 1 * MiB  # members up to this size are kept in memory after validation...
CACHE_TOTAL_BYTES = 32 * MiB  # ...until together they reach this
CHECKPOINT_EVERY = 4 * MiB  # a decompressor snapshot (~40 KB) every this many tar bytes
TAR_OVERHEAD_PER_MEMBER = 4 * KiB  # headers and padding the tar stream may add per member
MAX_TAR_EXTENDED_HEADER = 64 * KiB  # pax and GNU long-name headers are read into memory whole

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
GZIP_MAGIC = b"\x1f\x8b\x08"


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


# --- names -----------------------------------------------------------------------------------

_DRIVE = re.compile(r"[A-Za-z]:")


def _shown(name: str) -> str:
    """The name with unprintable characters escaped, safe to put in a message or a log."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in name)


def _check_encoding(raw: str) -> None:
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept as surrogates by the tar reader
        raise UnsafeMemberError("name is not valid UTF-8", path=_shown(raw)) from None
    if any(unicodedata.category(c) == "Cc" for c in raw):
        raise UnsafeMemberError("name contains a NUL or control character", path=_shown(raw))


def _check_anchor(raw: str) -> None:
    if raw.startswith("/"):
        raise UnsafeMemberError("absolute path", path=_shown(raw))
    if _DRIVE.match(raw):
        raise UnsafeMemberError("path starts with a drive letter", path=_shown(raw))


def _check_segments(raw: str, segments: list[str], limits: Limits) -> None:
    if ".." in segments:
        raise UnsafeMemberError("path traversal ('..' segment)", path=_shown(raw))
    if "" in segments:
        raise UnsafeMemberError("empty path segment", path=_shown(raw))
    if "." in segments:
        raise UnsafeMemberError("'.' path segment", path=_shown(raw))
    if len(segments) > limits.max_name_depth:
        raise ArchiveLimitError(
            f"path is {len(segments)} levels deep, limit {limits.max_name_depth}", path=_shown(raw)
        )


def _normalise_name(raw: str, is_dir: bool, limits: Limits) -> str:
    """The member's name without a leading './' or a directory's trailing '/', or raise."""
    if not raw:
        raise UnsafeMemberError("empty member name")
    _check_encoding(raw)
    length = len(raw.encode("utf-8"))
    if length > limits.max_name_length:
        raise ArchiveLimitError(
            f"name is {length} bytes long, limit {limits.max_name_length}", path=_shown(raw)
        )
    _check_anchor(raw)
    if "\\" in raw:
        raise UnsafeMemberError("name contains a backslash", path=_shown(raw))
    # `tar -C dir -czf x.tar.gz .` writes "./name": that prefix means the archive's root.
    name = raw[2:] if raw.startswith("./") else raw
    if is_dir and name.endswith("/"):
        name = name[:-1]
    _check_segments(raw, name.split("/"), limits)
    return name


def _is_root(raw: str, is_dir: bool) -> bool:
    """The "./" entry some tar writers add for the archive's root directory."""
    return is_dir and raw in (".", "./")


def _fold(name: str) -> str:
    """Canonical caseless form: names equal here clash on some filesystem."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def _clash(name: str, other: str) -> str:
    if name == other:
        return f"duplicate of {_shown(other)!r}"
    if unicodedata.normalize("NFC", name) == unicodedata.normalize("NFC", other):
        return f"same name as {_shown(other)!r} after Unicode normalisation (NFC/NFD)"
    return f"same name as {_shown(other)!r} ignoring case"


class _NameRegistry:
    """Refuses duplicate names, and files that other members use as a directory."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, bool]] = {}  # folded -> (name, is_dir)
        self._parents: dict[str, str] = {}  # folded directory -> a member inside it

    def add(self, name: str, is_dir: bool) -> None:
        key = _fold(name)
        if key in self._entries:
            other, other_dir = self._entries[key]
            problem = _clash(name, other)
            if is_dir != other_dir:
                problem += " (a file and a directory)"
            raise DuplicateMemberError(problem, path=_shown(name))
        if not is_dir and key in self._parents:
            raise DuplicateMemberError(
                f"is a file, but {_shown(self._parents[key])!r} uses it as a directory",
                path=_shown(name),
            )
        parts = key.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            found = self._entries.get(parent)
            if found and not found[1]:
                raise DuplicateMemberError(
                    f"uses the file {_shown(found[0])!r} as a directory", path=_shown(name)
                )
            self._parents.setdefault(parent, name)
        self._entries[key] = (name, is_dir)


def _check_placement(name: str) -> None:
    # Only docker-save tarballs may live under images/, and they are checked separately.
    if name.startswith(IMAGES_DIR) and not name.endswith(".tar"):
        raise UnsafeMemberError("files under images/ must be .tar image tarballs", path=name)


# --- content ---------------------------------------------------------------------------------

_CONTENT_MAGIC = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"PK\x07\x08", "zip"),
    (GZIP_MAGIC, "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
)
_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")


def _looks_like_tar(head: bytes) -> bool:
    if head[257:262] == b"ustar":
        return True
    # Old v7 and GNU tars have no magic; a header whose checksum adds up is one.
    if len(head) < 512 or not any(head[:100]):
        return False
    try:
        declared = int(head[148:156].strip(b"\0 ") or b"-1", 8)
    except ValueError:
        return False
    return declared == sum(head[:148]) + 8 * 0x20 + sum(head[156:512])


def nested_archive_kind(head: bytes) -> str | None:
    """The kind of archive or compressed stream the content starts with, if any."""
    for magic, kind in _CONTENT_MAGIC:
        if head.startswith(magic):
            return kind
    if _BZIP2.match(head):
        return "bzip2"
    if _looks_like_tar(head):
        return "tar"
    return None


def _check_content(name: str, head: bytes) -> None:
    if name.startswith(IMAGES_DIR):
        return
    kind = nested_archive_kind(head)
    if kind:
        raise UnsafeMemberError(
            f"nested archive ({kind}); only images/*.tar may hold archives", path=name
        )


# --- sizes -----------------------------------------------------------------------------------


class _SizeBudget:
    """Declared sizes, checked against the limits before any data is decompressed."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0

    def declare(self, name: str, size: int, compressed: int | None = None) -> None:
        limits = self.limits
        if size < 0:
            raise CorruptArchiveError(f"negative size {size}", path=name)
        if size > limits.max_member_bytes:
            raise ArchiveLimitError(
                f"declares {size} bytes unpacked, limit {limits.max_member_bytes}", path=name
            )
        self.total += size
        if self.total > limits.max_unpacked_bytes:
            raise ArchiveLimitError(
                f"brings the unpacked total to {self.total} bytes, "
                f"limit {limits.max_unpacked_bytes}",
                path=name,
            )
        if compressed is not None:
            _check_ratio(name, size, compressed, limits)


def _check_ratio(name: str, unpacked: int, packed: int, limits: Limits) -> None:
    if unpacked > limits.ratio_floor and unpacked > limits.max_ratio * max(packed, 1):
        ratio = unpacked / max(packed, 1)
        raise ArchiveLimitError(
            f"compression ratio {ratio:.0f}:1 exceeds {limits.max_ratio:.0f}:1", path=name
        )


@dataclass
class _Member:
    """A validated regular file: where its data is and what it must hash to."""

    name: str
    size: int
    crc: int
    offset: int  # zip: the compressed data in the file; tar: the data in the tar stream
    packed: int = 0  # zip: compressed length
    method: int = 0  # zip: 0 stored, 8 deflate
    data: bytes | None = None  # tar.gz: small members kept after validation


def _verified(member: _Member, chunks: Iterable[bytes], learn_crc: bool = False) -> Iterator[bytes]:
    """Pass the content through, refusing it if its length or CRC is not what was validated.

    A tar member has no CRC of its own: its first read (`learn_crc`) records one.
    """
    crc = 0
    count = 0
    for chunk in chunks:
        count += len(chunk)
        if count > member.size:
            raise CorruptArchiveError(
                f"data is longer than the {member.size} bytes its header declares",
                path=member.name,
            )
        crc = zlib.crc32(chunk, crc)
        yield chunk
    if count != member.size:
        raise CorruptArchiveError(
            f"data is {count} bytes, its header declares {member.size}", path=member.name
        )
    if learn_crc:
        member.crc = crc
    elif crc != member.crc:
        raise CorruptArchiveError("CRC mismatch: the data is damaged", path=member.name)


def _scan(
    member: _Member, chunks: Iterable[bytes], keep: bool, learn_crc: bool = False
) -> bytes | None:
    """Read a member through once: check its length and content; return it if `keep`."""
    head = b""
    kept: list[bytes] = []
    for chunk in _verified(member, chunks, learn_crc):
        if len(head) < HEAD_BYTES:
            head += chunk[: HEAD_BYTES - len(head)]
        if keep:
            kept.append(chunk)
    _check_content(member.name, head)
    return b"".join(kept) if keep else None


# --- zip -------------------------------------------------------------------------------------

_EOCD = struct.Struct("<4sHHHHIIH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_DESCRIPTOR = struct.Struct("<III")
EOCD_SIG, CENTRAL_SIG, LOCAL_SIG = b"PK\x05\x06", b"PK\x01\x02", b"PK\x03\x04"
DESCRIPTOR_SIG, ZIP64_LOCATOR_SIG = b"PK\x07\x08", b"PK\x06\x07"
STORED, DEFLATED = 0, 8
FLAG_ENCRYPTED, FLAG_DESCRIPTOR, FLAG_UTF8, FLAG_STRONG = 0x1, 0x8, 0x800, 0x40
FLAGS_THAT_MUST_AGREE = FLAG_ENCRYPTED | FLAG_DESCRIPTOR | FLAG_UTF8
EXTRA_ZIP64, EXTRA_PKWARE_UNIX, EXTRA_STRONG_ENCRYPTION = 0x0001, 0x000D, 0x0017
EXTRA_UNICODE_PATH, EXTRA_ASI_UNIX = 0x7075, 0x756E
_SPECIAL_TYPES = {
    stat.S_IFLNK: "symbolic link",
    stat.S_IFCHR: "device",
    stat.S_IFBLK: "device",
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
}


@dataclass
class _ZipEntry:
    """One central-directory record, as far as the checks need it."""

    raw_name: bytes
    name: str
    is_dir: bool
    flags: int
    method: int
    crc: int
    packed: int
    size: int
    offset: int  # of the local header
    data_offset: int = 0


def _read_exact(fp: BinaryIO, offset: int, length: int, what: str) -> bytes:
    fp.seek(offset)
    data = fp.read(length)
    if len(data) != length:
        raise CorruptArchiveError(f"truncated archive: {what} runs past the end")
    return data


def _find_eocd(fp: BinaryIO, size: int) -> tuple[int, tuple]:
    """The end-of-central-directory record, which must close the file exactly."""
    tail_start = max(0, size - (_EOCD.size + 0xFFFF))
    tail = _read_exact(fp, tail_start, size - tail_start, "the end record")
    if len(tail) >= _EOCD.size and tail[-_EOCD.size :].startswith(EOCD_SIG):
        record = _EOCD.unpack(tail[-_EOCD.size :])
        if record[7] == 0:
            return size - _EOCD.size, record
    found = tail.rfind(EOCD_SIG)
    if found < 0:
        raise CorruptArchiveError("no end-of-central-directory record: truncated or not a zip")
    comment_length = _EOCD.unpack_from(tail, found)[7] if found + _EOCD.size <= len(tail) else -1
    if found + _EOCD.size + comment_length == len(tail) and comment_length > 0:
        raise CorruptArchiveError("archive comments are not allowed")
    extra = len(tail) - found - _EOCD.size
    raise CorruptArchiveError(f"{extra} bytes of trailing data after the end of the zip archive")


def _check_eocd(fp: BinaryIO, eocd_at: int, record: tuple, limits: Limits) -> None:
    _sig, disk, cd_disk, on_disk, total, cd_size, cd_offset, _comment = record
    if eocd_at >= 20 and _read_exact(fp, eocd_at - 20, 4, "zip64 locator") == ZIP64_LOCATOR_SIG:
        raise CorruptArchiveError("zip64 archives are not supported")
    if 0xFFFF in (disk, cd_disk, on_disk, total) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise CorruptArchiveError("zip64 archives are not supported")
    if disk or cd_disk or on_disk != total:
        raise CorruptArchiveError("multi-disk (spanned) zip archives are not supported")
    # The count is checked before anything else is read, let alone decompressed.
    if total > limits.max_members:
        raise ArchiveLimitError(f"archive has {total} members, limit {limits.max_members}")
    if cd_offset + cd_size != eocd_at:
        gap = eocd_at - cd_offset - cd_size
        raise CorruptArchiveError(
            f"{gap} bytes of unexpected data before the central directory "
            "(prepended data or concatenated archives)"
            if gap > 0
            else "central directory overruns the end record"
        )


def _parse_extra(extra: bytes, name: str) -> dict[int, bytes]:
    fields: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(extra):
        field_id, length = struct.unpack_from("<HH", extra, pos)
        data = extra[pos + 4 : pos + 4 + length]
        if len(data) != length:
            raise CorruptArchiveError("malformed extra field", path=name)
        if field_id in fields:
            raise CorruptArchiveError(f"extra field 0x{field_id:04x} appears twice", path=name)
        fields[field_id] = data
        pos += 4 + length
    if any(extra[pos:]):  # alignment tools pad with a few zero bytes; anything else is junk
        raise CorruptArchiveError("malformed extra field", path=name)
    return fields


def _check_extra(fields: dict[int, bytes], name: str, decoded: str) -> None:
    if EXTRA_ZIP64 in fields:
        raise CorruptArchiveError("zip64 members are not supported", path=name)
    if EXTRA_STRONG_ENCRYPTION in fields:
        raise CorruptArchiveError("encrypted members are not supported", path=name)
    # Unix extra fields can carry a link target that some extractors honour.
    pkware = fields.get(EXTRA_PKWARE_UNIX, b"")
    if len(pkware) > 12:
        raise UnsafeMemberError("link (PKWARE unix extra field names a target)", path=name)
    asi = fields.get(EXTRA_ASI_UNIX, b"")
    if len(asi) >= 14:
        mode = struct.unpack_from("<H", asi, 4)[0]
        if stat.S_ISLNK(mode):
            raise UnsafeMemberError("symbolic link (ASi unix extra field)", path=name)
        if len(asi) > 14:
            raise UnsafeMemberError("hard link (ASi unix extra field names a target)", path=name)
    unicode_path = fields.get(EXTRA_UNICODE_PATH)
    if unicode_path is not None and unicode_path[5:] != decoded.encode("utf-8"):
        raise UnsafeMemberError(
            "ambiguous name: the Unicode path extra field names another file", path=name
        )


def _decode_zip_name(raw: bytes, flags: int) -> str:
    shown = raw.decode("utf-8", "backslashreplace")
    if flags & FLAG_UTF8:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsafeMemberError("name is not valid UTF-8", path=_shown(shown)) from None
    if raw.isascii():
        return raw.decode("ascii")
    # Without the UTF-8 flag the bytes are cp437 by the spec but UTF-8 in practice.
    raise UnsafeMemberError(
        "non-ASCII name without the UTF-8 flag is ambiguous (cp437 or UTF-8?)",
        path=_shown(shown),
    )


def _check_zip_type(name: str, is_dir: bool, external_attr: int) -> None:
    """Refuse links, devices, and type bits that contradict the name's trailing '/'."""
    kind = stat.S_IFMT(external_attr >> 16)
    if kind in _SPECIAL_TYPES:
        raise UnsafeMemberError(_SPECIAL_TYPES[kind], path=name)
    if (kind == stat.S_IFDIR and not is_dir) or (kind == stat.S_IFREG and is_dir):
        raise UnsafeMemberError(
            "type bits and trailing '/' disagree on whether this is a directory", path=name
        )


def _check_zip_method(entry: _ZipEntry) -> None:
    if entry.flags & (FLAG_ENCRYPTED | FLAG_STRONG):
        raise CorruptArchiveError("encrypted members are not supported", path=entry.name)
    if entry.method not in (STORED, DEFLATED):
        raise CorruptArchiveError(
            f"compression method {entry.method} is not supported (only stored and deflate)",
            path=entry.name,
        )
    if 0xFFFFFFFF in (entry.packed, entry.size, entry.offset):
        raise CorruptArchiveError("zip64 members are not supported", path=entry.name)
    if entry.method == STORED and entry.packed != entry.size:
        raise CorruptArchiveError(
            f"stored member declares {entry.packed} bytes stored but {entry.size} unpacked",
            path=entry.name,
        )
    if entry.is_dir and entry.size:
        raise CorruptArchiveError("directory entry with data", path=entry.name)


def _read_central_record(fp: BinaryIO, limits: Limits) -> _ZipEntry:
    """One central-directory record; the root "./" entry is named "."."""
    fields = _CENTRAL.unpack(fp.read(_CENTRAL.size).ljust(_CENTRAL.size, b"\0"))
    (sig, _made_by, _needed, flags, method, _time, _date, crc, packed, size) = fields[:10]
    name_length, extra_length, comment_length, disk, _internal, external, offset = fields[10:]
    if sig != CENTRAL_SIG:
        raise CorruptArchiveError("malformed central directory")
    raw = fp.read(name_length)
    extra = fp.read(extra_length)
    fp.read(comment_length)
    decoded = _decode_zip_name(raw, flags)
    is_dir = decoded.endswith("/")
    name = "." if _is_root(decoded, is_dir) else _normalise_name(decoded, is_dir, limits)
    _check_zip_type(name, is_dir, external)
    if comment_length:
        raise CorruptArchiveError("member comments are not allowed", path=name)
    if disk:
        raise CorruptArchiveError("multi-disk (spanned) zip archives are not supported")
    _check_extra(_parse_extra(extra, name), name, decoded)
    entry = _ZipEntry(raw, name, is_dir, flags, method, crc, packed, size, offset)
    _check_zip_method(entry)
    return entry


def _read_central_directory(
    fp: BinaryIO, record: tuple, eocd_at: int, limits: Limits
) -> list[_ZipEntry]:
    """Every record, checked one by one: names, types, methods and declared sizes."""
    count, cd_offset = record[4], record[6]
    fp.seek(cd_offset)
    entries: list[_ZipEntry] = []
    names = _NameRegistry()
    budget = _SizeBudget(limits)
    for _ in range(count):
        entry = _read_central_record(fp, limits)
        entries.append(entry)
        if entry.name == ".":
            continue
        names.add(entry.name, entry.is_dir)
        if not entry.is_dir:
            _check_placement(entry.name)
            budget.declare(entry.name, entry.size, entry.packed)
    if fp.tell() != eocd_at:
        raise CorruptArchiveError("central directory size does not match its records")
    return entries


def _check_local_header(fp: BinaryIO, entry: _ZipEntry) -> int:
    """Check the local header against the central record; return where the data starts."""
    header = _LOCAL.unpack(_read_exact(fp, entry.offset, _LOCAL.size, "a local header"))
    sig, _needed, flags, method, _time, _date, crc, packed, size, name_length, extra_length = header
    if sig != LOCAL_SIG:
        raise CorruptArchiveError("no local header where the central directory points", entry.name)
    raw = fp.read(name_length)
    if raw != entry.raw_name:
        shown = raw.decode("utf-8", "backslashreplace")
        raise CorruptArchiveError(
            f"local header names {_shown(shown)!r}, the central directory {entry.name!r}",
            path=entry.name,
        )
    if method != entry.method or (flags ^ entry.flags) & FLAGS_THAT_MUST_AGREE:
        raise CorruptArchiveError(
            "local header and central directory disagree on method or flags", entry.name
        )
    declared = (crc, packed, size)
    expected = (entry.crc, entry.packed, entry.size)
    # With a data descriptor the local header may leave any of these zero (the spec says all;
    # Info-ZIP writes the size it knows); every value it does give must agree.
    deferred = flags & FLAG_DESCRIPTOR
    if any(d != e and not (deferred and d == 0) for d, e in zip(declared, expected, strict=True)):
        raise CorruptArchiveError(
            f"local header declares crc/packed/size {declared}, "
            f"the central directory {expected}: sizes in headers disagree",
            path=entry.name,
        )
    extra = fp.read(extra_length)
    _check_extra(_parse_extra(extra, entry.name), entry.name, raw.decode("utf-8", "replace"))
    return entry.offset + _LOCAL.size + name_length + extra_length


def _descriptor_length(fp: BinaryIO, entry: _ZipEntry, at: int) -> int:
    """Length of the data descriptor after the data, which must repeat the central record."""
    if not entry.flags & FLAG_DESCRIPTOR:
        return 0
    expected = _DESCRIPTOR.pack(entry.crc, entry.packed, entry.size)
    fp.seek(at)
    found = fp.read(16)
    if found == DESCRIPTOR_SIG + expected:
        return 16
    if found[:12] == expected:
        return 12
    raise CorruptArchiveError("data descriptor disagrees with the central directory", entry.name)


def _check_layout(fp: BinaryIO, entries: list[_ZipEntry], cd_offset: int) -> None:
    """Members must tile the file from byte 0 to the central directory: no gaps, no overlap."""
    position = 0
    previous = ""
    for entry in sorted(entries, key=lambda e: e.offset):
        if entry.offset < position:
            raise CorruptArchiveError(
                f"overlaps member {previous!r} (overlapping entries: a zip bomb technique)",
                path=entry.name,
            )
        if entry.offset > position:
            raise CorruptArchiveError(
                f"{entry.offset - position} bytes of unexpected data before this member "
                "(prepended data or concatenated archives)",
                path=entry.name,
            )
        entry.data_offset = _check_local_header(fp, entry)
        data_end = entry.data_offset + entry.packed
        position = data_end + _descriptor_length(fp, entry, data_end)
        previous = entry.name
    if position > cd_offset:
        raise CorruptArchiveError("overlaps the central directory", path=previous)
    if position < cd_offset:
        raise CorruptArchiveError(
            f"{cd_offset - position} bytes of unexpected data before the central directory"
        )


def _read_span(fp: BinaryIO, offset: int, length: int, name: str) -> Iterator[bytes]:
    end = offset + length
    while offset < end:
        fp.seek(offset)  # every time: another member may be read in between
        chunk = fp.read(min(READ_CHUNK, end - offset))
        if not chunk:
            raise CorruptArchiveError("truncated member data", path=name)
        offset += len(chunk)
        yield chunk


def _inflate(compressed: Iterator[bytes], size: int, name: str) -> Iterator[bytes]:
    """Raw deflate, stopped as soon as the output passes the declared size."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    produced = 0
    try:
        while not inflater.eof:
            data = inflater.unconsumed_tail or next(compressed, b"")
            out = inflater.decompress(data, INFLATE_CHUNK)
            if not out and not data and not inflater.eof:
                raise CorruptArchiveError("compressed data ends early", path=name)
            produced += len(out)
            if produced > size:
                raise CorruptArchiveError(
                    f"inflates to more than the {size} bytes its headers declare", path=name
                )
            yield out
    except zlib.error as error:
        raise CorruptArchiveError(f"invalid deflate data: {error}", path=name) from None
    if inflater.unused_data or next(compressed, b""):
        raise CorruptArchiveError("bytes after the end of the deflate data", path=name)


def _zip_chunks(fp: BinaryIO, member: _Member) -> Iterator[bytes]:
    raw = _read_span(fp, member.offset, member.packed, member.name)
    return raw if member.method == STORED else _inflate(raw, member.size, member.name)


def _validate_zip(fp: BinaryIO, size: int, limits: Limits) -> dict[str, _Member]:
    eocd_at, record = _find_eocd(fp, size)
    _check_eocd(fp, eocd_at, record, limits)
    entries = _read_central_directory(fp, record, eocd_at, limits)
    _check_layout(fp, entries, record[6])
    members: dict[str, _Member] = {}
    for entry in sorted(entries, key=lambda e: e.offset):
        member = _Member(
            entry.name, entry.size, entry.crc, entry.data_offset, entry.packed, entry.method
        )
        _scan(member, _zip_chunks(fp, member), keep=False)
        if not entry.is_dir and entry.name != ".":
            members[entry.name] = member
    return members


# --- tar.gz ----------------------------------------------------------------------------------


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
        self.delivered = self.produced
        self._recent: deque[tuple[int, bytes]] = deque(maxlen=16)

    def read(self, size: int = -1) -> bytes:
        while self._pos >= len(self._out) and not self.eof:
            self._step()
        if size < 0:
            size = len(self._out) - self._pos
        chunk = self._out[self._pos : self._pos + size]
        self._pos += len(chunk)
        self._recent.append((self.delivered, chunk))
        self.delivered += len(chunk)
        return chunk

    def skip(self, count: int) -> None:
        while count > 0:
            chunk = self.read(min(count, INFLATE_CHUNK))
            if not chunk:
                raise CorruptArchiveError("truncated tar stream", path=self.member)
            count -= len(chunk)

    def since(self, offset: int) -> bytes:
        """What was delivered from `offset` on (tarfile reads ahead a little)."""
        parts = [chunk[max(0, offset - start) :] for start, chunk in self._recent]
        if not self._recent or self._recent[0][0] > offset:
            raise CorruptArchiveError("cannot locate the end of the tar archive")
        return b"".join(parts)

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
        _check_ratio(self.member, self.produced, self.consumed, self.limits)

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

    def _proc_member(self, tarfile_: tarfile.TarFile):  # type: ignore[override]
        extended = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
        if self.type in (*extended, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK) and (
            self.size > MAX_TAR_EXTENDED_HEADER or self.size < 0
        ):
            raise ArchiveLimitError(
                f"extended header of {self.size} bytes, limit {MAX_TAR_EXTENDED_HEADER}",
                path=_shown(self.name),
            )
        return super()._proc_member(tarfile_)


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
    shown = _shown(info.name)
    if info.type in _TAR_SPECIAL:
        target = f" to {_shown(info.linkname)!r}" if info.issym() or info.islnk() else ""
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
                f"archive has more than {limits.max_members} members", path=_shown(info.name)
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
    zeros = 0
    rest = stream.since(end)
    while rest:
        if rest.count(0) != len(rest):
            raise CorruptArchiveError(
                "non-zero data after the end of the tar archive (concatenated archives, "
                "garbage, or a damaged header)"
            )
        zeros += len(rest)
        rest = stream.read(READ_CHUNK)
    if zeros < 2 * tarfile.BLOCKSIZE:
        raise CorruptArchiveError("tar archive has no end-of-archive marker: truncated?")


class _TarValidation:
    """One pass over the tar stream: every header and every byte of data checked."""

    def __init__(self, fp: BinaryIO, size: int, limits: Limits) -> None:
        self.limits = limits
        self.checkpoints: list[_Checkpoint] = []
        self.stream = _GzipStream(fp, size, limits, checkpoints=self.checkpoints)
        self.names = _NameRegistry()
        self.budget = _SizeBudget(limits)
        self.cached = 0
        self.members: dict[str, _Member] = {}

    def run(self) -> dict[str, _Member]:
        try:
            tar = tarfile.open(  # noqa: SIM115 - nothing to close: it reads our stream
                fileobj=self.stream,  # type: ignore[arg-type]
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
            self.stream.member = _shown(info.name)
            self._member(tar, info)
        _check_tar_end(self.stream, tar.offset)
        return self.members

    def _member(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        is_dir = _tar_is_dir(info)
        if _is_root(info.name, is_dir):
            return
        name = _normalise_name(info.name, is_dir, self.limits)
        self.names.add(name, is_dir)
        if is_dir:
            return
        _check_placement(name)
        self.budget.declare(name, info.size)
        keep = info.size <= CACHE_MEMBER_BYTES and self.cached + info.size <= CACHE_TOTAL_BYTES
        member = _Member(name, info.size, 0, info.offset_data)
        member.data = _scan(member, _tar_data(tar, info, name), keep, learn_crc=True)
        self.cached += len(member.data or b"")
        self.members[name] = member


def _tar_chunks(
    fp: BinaryIO, size: int, limits: Limits, checkpoints: list[_Checkpoint], member: _Member
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


# --- the archive -----------------------------------------------------------------------------


class _ChunkReader(io.RawIOBase):
    """A read-only file object over an iterator of chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
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
        members: dict[str, _Member],
        chunks: Callable[[_Member], Iterator[bytes]],
    ) -> None:
        self.kind = kind
        self.names: list[str] = sorted(members)
        self._fp = fp
        self._owns_fp = owns_fp
        self._members = members
        self._chunks = chunks
        self._closed = False

    def _member(self, name: str) -> _Member:
        if self._closed:
            raise ValueError("the archive is closed")
        try:
            return self._members[name]
        except KeyError:
            raise MemberNotFoundError("no such file in the archive", path=_shown(name)) from None

    def size_of(self, name: str) -> int:
        """The member's size in bytes, unpacked."""
        return self._member(name).size

    def read(self, name: str) -> bytes:
        """The member's content, checked again against what was validated."""
        member = self._member(name)
        if member.data is not None:
            return member.data
        return b"".join(_verified(member, self._chunks(member)))

    def open(self, name: str) -> BinaryIO:
        """The member's content as a stream, for members too large to hold in memory."""
        member = self._member(name)
        if member.data is not None:
            return io.BytesIO(member.data)
        reader = _ChunkReader(_verified(member, self._chunks(member)))
        return io.BufferedReader(reader, READ_CHUNK)  # type: ignore[return-value]

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
            members = _validate_zip(fp, size, limits)
            return PackageArchive(kind, fp, owns_fp, members, lambda m: _zip_chunks(fp, m))
        if kind == "tar.gz":
            validation = _TarValidation(fp, size, limits)
            members = validation.run()
            checkpoints = validation.checkpoints

            def chunks(member: _Member) -> Iterator[bytes]:
                return _tar_chunks(fp, size, limits, checkpoints, member)

            return PackageArchive(kind, fp, owns_fp, members, chunks)
        raise CorruptArchiveError("not a zip or tar.gz archive")
    except BaseException:
        if owns_fp:
            fp.close()
        raise
