"""Member content: nested-archive magic, declared-size and ratio limits, verified reading."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from packages.archive.names import IMAGES_DIR
from packages.errors import ArchiveLimitError, CorruptArchiveError, UnsafeMemberError
from packages.limits import KiB, Limits

READ_CHUNK = 64 * KiB  # compressed bytes read from the archive at a time
INFLATE_CHUNK = 256 * KiB  # most bytes one decompression step may produce, so a bomb never runs
HEAD_BYTES = 512  # enough of a member's content to recognise any archive inside it

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
GZIP_MAGIC = b"\x1f\x8b\x08"

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


class SizeBudget:
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
            check_ratio(name, size, compressed, limits)


def check_ratio(name: str, unpacked: int, packed: int, limits: Limits) -> None:
    if unpacked > limits.ratio_floor and unpacked > limits.max_ratio * max(packed, 1):
        ratio = unpacked / max(packed, 1)
        raise ArchiveLimitError(
            f"compression ratio {ratio:.0f}:1 exceeds {limits.max_ratio:.0f}:1", path=name
        )


@dataclass
class Member:
    """A validated regular file: where its data is and what it must hash to."""

    name: str
    size: int
    crc: int
    offset: int  # zip: the compressed data in the file; tar: the data in the tar stream
    packed: int = 0  # zip: compressed length
    method: int = 0  # zip: 0 stored, 8 deflate
    data: bytes | None = None  # tar.gz: small members kept after validation


def verified(member: Member, chunks: Iterable[bytes], learn_crc: bool = False) -> Iterator[bytes]:
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


def scan(
    member: Member, chunks: Iterable[bytes], keep: bool, learn_crc: bool = False
) -> bytes | None:
    """Read a member through once: check its length and content; return it if `keep`."""
    head = b""
    kept: list[bytes] = []
    for chunk in verified(member, chunks, learn_crc):
        if len(head) < HEAD_BYTES:
            head += chunk[: HEAD_BYTES - len(head)]
        if keep:
            kept.append(chunk)
    _check_content(member.name, head)
    return b"".join(kept) if keep else None
