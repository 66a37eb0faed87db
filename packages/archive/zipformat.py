"""Zip archives: structure checks (end record, central directory, layout) and member data."""

from __future__ import annotations

import stat
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from packages.archive.content import INFLATE_CHUNK, READ_CHUNK, Member, SizeBudget, scan
from packages.archive.names import (
    NameRegistry,
    check_placement,
    is_root,
    normalise_name,
    printable,
)
from packages.errors import ArchiveLimitError, CorruptArchiveError, UnsafeMemberError
from packages.limits import Limits

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
            raise UnsafeMemberError("name is not valid UTF-8", path=printable(shown)) from None
    if raw.isascii():
        return raw.decode("ascii")
    # Without the UTF-8 flag the bytes are cp437 by the spec but UTF-8 in practice.
    raise UnsafeMemberError(
        "non-ASCII name without the UTF-8 flag is ambiguous (cp437 or UTF-8?)",
        path=printable(shown),
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
    name = "." if is_root(decoded, is_dir) else normalise_name(decoded, is_dir, limits)
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
    names = NameRegistry()
    budget = SizeBudget(limits)
    for _ in range(count):
        entry = _read_central_record(fp, limits)
        entries.append(entry)
        if entry.name == ".":
            continue
        names.add(entry.name, entry.is_dir)
        if not entry.is_dir:
            check_placement(entry.name)
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
            f"local header names {printable(shown)!r}, the central directory {entry.name!r}",
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


def zip_chunks(fp: BinaryIO, member: Member) -> Iterator[bytes]:
    raw = _read_span(fp, member.offset, member.packed, member.name)
    return raw if member.method == STORED else _inflate(raw, member.size, member.name)


def validate_zip(fp: BinaryIO, size: int, limits: Limits) -> dict[str, Member]:
    eocd_at, record = _find_eocd(fp, size)
    _check_eocd(fp, eocd_at, record, limits)
    entries = _read_central_directory(fp, record, eocd_at, limits)
    _check_layout(fp, entries, record[6])
    members: dict[str, Member] = {}
    for entry in sorted(entries, key=lambda e: e.offset):
        member = Member(
            entry.name, entry.size, entry.crc, entry.data_offset, entry.packed, entry.method
        )
        scan(member, zip_chunks(fp, member), keep=False)
        if not entry.is_dir and entry.name != ".":
            members[entry.name] = member
    return members
