"""Archives crafted in memory for the archive-safety tests: good ones and every kind of bad one."""

from __future__ import annotations

import gzip
import io
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

MiB = 1024 * 1024
GiB = 1024 * MiB
FILE_MODE = (stat.S_IFREG | 0o644) << 16
UNIX_MADE_BY = 3 << 8 | 20  # made on unix, spec version 2.0
UTF8_FLAG = 0x800
DESCRIPTOR_FLAG = 0x8


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# --- well-formed archives, written by the standard library ---------------------------------


def make_zip(
    members: Iterable[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    """A zip as zipfile writes it; a name ending in '/' is a directory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def make_targz(
    members: Iterable[tuple[str, bytes]], level: int = 6, fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    """A tar.gz as tarfile writes it; a name ending in '/' is a directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 0
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return gzip_bytes(buffer.getvalue(), level)


# --- raw zip: every header field under the test's control ---------------------------------


@dataclass
class RawZipEntry:
    """One zip member; the defaults give an honest one, each field can be made to lie."""

    name: str | bytes
    data: bytes = b""
    method: int = zipfile.ZIP_DEFLATED
    packed: bytes | None = None  # stored as the member's data instead of compressing `data`
    flags: int = 0  # the UTF-8 flag is added for non-ASCII str names
    external_attr: int = FILE_MODE
    extra: bytes = b""
    crc: int | None = None  # default: CRC of `data`
    size: int | None = None  # declared unpacked size, both headers; default len(data)
    local_size: int | None = None  # declared in the local header only
    local_name: bytes | None = None  # a different name in the local header
    offset: int | None = None  # the central record points here instead of its own header
    write_local: bool = True  # False: only a central record, pointing at `offset`
    descriptor: bytes | None = None  # written after the data; sets the descriptor flag
    comment: bytes = b""


def _zip_name(entry: RawZipEntry) -> tuple[bytes, int]:
    if isinstance(entry.name, bytes):
        return entry.name, entry.flags
    raw = entry.name.encode("utf-8")
    return raw, entry.flags | (0 if raw.isascii() else UTF8_FLAG)


def build_zip(
    entries: Iterable[RawZipEntry], *, before: bytes = b"", after: bytes = b"", comment: bytes = b""
) -> bytes:
    """Local headers and data, central directory, end record; offsets count `before`."""
    body = bytearray(before)
    central = bytearray()
    entries = list(entries)
    for entry in entries:
        name, flags = _zip_name(entry)
        flags |= 0 if entry.descriptor is None else DESCRIPTOR_FLAG
        if entry.packed is not None:
            packed = entry.packed
        elif entry.method == zipfile.ZIP_DEFLATED:
            packed = deflate_raw(entry.data)
        else:
            packed = entry.data
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        size = len(entry.data) if entry.size is None else entry.size
        local_size = size if entry.local_size is None else entry.local_size
        local_name = name if entry.local_name is None else entry.local_name
        offset = len(body) if entry.offset is None else entry.offset
        # Like Info-ZIP streaming: with a descriptor, the local header gives only the size.
        local_crc, local_packed = (crc, len(packed)) if entry.descriptor is None else (0, 0)
        if entry.write_local:
            body += struct.pack(
                "<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, entry.method, 0, 0x21,
                local_crc, local_packed, local_size, len(local_name), len(entry.extra),
            )  # fmt: skip
            body += local_name + entry.extra + packed + (entry.descriptor or b"")
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", UNIX_MADE_BY, 20, flags, entry.method, 0,
            0x21, crc, len(packed), size, len(name), len(entry.extra), len(entry.comment), 0, 0,
            entry.external_attr, offset,
        )  # fmt: skip
        central += name + entry.extra + entry.comment
    end = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(body),
        len(comment),
    )  # fmt: skip
    return bytes(body + central + end + comment + after)


def zip_of(*entries: RawZipEntry, **kwargs: bytes) -> bytes:
    """A raw zip whose first member is a valid manifest, then `entries`."""
    return build_zip([RawZipEntry("manifest.yaml", b"format: catalog/v1\n"), *entries], **kwargs)


def descriptor(data: bytes, packed_length: int, signature: bool = True) -> bytes:
    """The data descriptor that follows a member's data: CRC and both sizes."""
    fields = struct.pack("<III", zlib.crc32(data), packed_length, len(data))
    return (b"PK\x07\x08" if signature else b"") + fields


def extra_field(field_id: int, data: bytes) -> bytes:
    return struct.pack("<HH", field_id, len(data)) + data


def asi_unix_extra(mode: int, link: bytes) -> bytes:
    """The ASi unix extra field (0x756e): mode and a link target some extractors honour."""
    body = struct.pack("<HIHH", mode, 0, 0, 0) + link
    return extra_field(0x756E, struct.pack("<I", zlib.crc32(body)) + body)


def overlapping_zip() -> bytes:
    """Fifield's overlap: the first member's stored data quotes the second member whole."""
    inner = RawZipEntry("files/b.txt", b"shared kernel " * 100, method=zipfile.ZIP_STORED)
    inner_local = build_zip([inner])[: 30 + len(b"files/b.txt") + len(inner.data)]
    outer = RawZipEntry("files/a.txt", inner_local, method=zipfile.ZIP_STORED)
    inner.offset = 30 + len(b"files/a.txt")  # inside the outer member's data
    inner.write_local = False
    return build_zip([outer, inner])


# --- raw tar ------------------------------------------------------------------------------


def tar_member(
    name: str,
    data: bytes = b"",
    *,
    kind: bytes = tarfile.REGTYPE,
    linkname: str = "",
    size: int | None = None,
    fmt: int = tarfile.PAX_FORMAT,
) -> bytes:
    """One header plus data padded to a block; `size` may lie about the data's length."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mtime = 0
    info.size = len(data) if size is None else size
    header = info.tobuf(fmt, "utf-8", "surrogateescape")
    padding = -len(data) % tarfile.BLOCKSIZE
    return header + data + b"\0" * padding


def tar_end() -> bytes:
    return b"\0" * (2 * tarfile.BLOCKSIZE)


def targz_of(*members: bytes, end: bool = True) -> bytes:
    """A tar.gz of raw members after a valid manifest, with the end-of-archive marker."""
    manifest = tar_member("manifest.yaml", b"format: catalog/v1\n")
    return gzip_bytes(manifest + b"".join(members) + (tar_end() if end else b""))


def v7_tar(data: bytes) -> bytes:
    """An old-style tar with no 'ustar' magic: recognisable only by its header checksum."""
    block = bytearray(tar_member("old.txt", data, fmt=tarfile.USTAR_FORMAT))
    block[257:265] = b"\0" * 8
    block[148:156] = b" " * 8
    block[148:155] = b"%06o\0" % sum(block[:512])
    return bytes(block) + tar_end()


# --- bombs that really unpack to gigabytes -----------------------------------------------
# A deflate block ended with Z_FULL_FLUSH does not refer to earlier data and is byte
# aligned, so the same compressed bytes can be repeated: 1 KiB of them per MiB of zeros.


def flushed_zeros_block() -> bytes:
    """Raw deflate of 1 MiB of zeros, repeatable; checked to be identical on a second run."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    second = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert first == second, "full-flushed blocks must repeat byte for byte"
    return first


def _raw_deflate(prefix: bytes, zero_mib: int, suffix: bytes) -> bytes:
    """`prefix`, `zero_mib` MiB of zeros and `suffix`, as one raw deflate stream."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(suffix) + compressor.flush()
    return head + flushed_zeros_block() * zero_mib + tail


# CRC-32 of gigabytes without computing over them: zlib's crc32_combine, in Python.


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


def _byte_shift_powers() -> list[list[int]]:
    """Operators that advance a CRC over 2**k zero bytes, for k = 0..63."""
    one_bit = [0xEDB88320] + [1 << n for n in range(31)]
    powers = [_gf2_square(_gf2_square(_gf2_square(one_bit)))]  # 8 bits: one byte
    for _ in range(63):
        powers.append(_gf2_square(powers[-1]))
    return powers


_SHIFTS = _byte_shift_powers()


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC-32 of A+B from CRC(A), CRC(B) and len(B)."""
    for power in range(length2.bit_length()):
        if length2 >> power & 1:
            crc1 = _gf2_times(_SHIFTS[power], crc1)
    return crc1 ^ crc2


def crc32_of_zeros(count: int) -> int:
    crc, piece, piece_length = 0, zlib.crc32(b"\0"), 1
    while count:
        if count & 1:
            crc = crc32_combine(crc, piece, piece_length)
        piece = crc32_combine(piece, piece, piece_length)
        piece_length *= 2
        count >>= 1
    return crc


def gzip_zero_bomb(prefix: bytes, zero_mib: int, suffix: bytes) -> bytes:
    """A genuine gzip stream: `prefix`, `zero_mib` MiB of zeros, `suffix`; correct trailer."""
    zeros = zero_mib * MiB
    crc = crc32_combine(zlib.crc32(prefix), crc32_of_zeros(zeros), zeros)
    crc = crc32_combine(crc, zlib.crc32(suffix), len(suffix))
    length = len(prefix) + zeros + len(suffix)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    body = _raw_deflate(prefix, zero_mib, suffix)
    return header + body + struct.pack("<II", crc, length & 0xFFFFFFFF)


def targz_bomb(zero_mib: int = 10 * 1024, declared: int | None = None) -> bytes:
    """One member of `zero_mib` MiB of zeros (10 GiB by default); its header may lie."""
    size = zero_mib * MiB if declared is None else declared
    header = tar_member("files/zeros.bin", size=size, fmt=tarfile.GNU_FORMAT)
    return gzip_zero_bomb(header, zero_mib, tar_end())


def zip_bomb(zero_mib: int = 10 * 1024, declared: int = MiB) -> bytes:
    """One deflated member of `zero_mib` MiB of zeros whose headers declare `declared` bytes."""
    packed = _raw_deflate(b"", zero_mib, b"")
    crc = crc32_of_zeros(zero_mib * MiB)
    return zip_of(RawZipEntry("files/zeros.bin", packed=packed, crc=crc, size=declared))
