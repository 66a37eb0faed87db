"""Archive safety (TEST_PLAN D22-D27): bad archives are refused with a typed, named error."""

from __future__ import annotations

import builtins
import bz2
import io
import lzma
import os
import stat
import tarfile
import tempfile
import time
import unicodedata
import zipfile
import zlib

import pytest

from packages.archive import MemberNotFoundError, PackageArchive, open_archive, sniff_kind
from packages.errors import (
    ArchiveLimitError,
    CorruptArchiveError,
    DuplicateMemberError,
    PackageError,
    UnsafeMemberError,
)
from packages.limits import DEFAULT_LIMITS, Limits
from tests import archives
from tests.archives import MiB, RawZipEntry, tar_member, targz_of, zip_of

MANIFEST = b"format: catalog/v1\nname: org.example.demo\n"
KINDS = ["zip", "tar.gz"]


def refused(
    data: bytes, error: type[PackageError], *fragments: str, limits: Limits = DEFAULT_LIMITS
):
    """Open `data`, expect exactly `error`, and check its message names each fragment."""
    with pytest.raises(PackageError) as caught:
        open_archive(io.BytesIO(data), limits)
    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return caught.value


def with_member(kind: str, name: str, data: bytes = b"data") -> bytes:
    """A package holding a manifest and one member called `name`, written raw."""
    if kind == "zip":
        return zip_of(RawZipEntry(name, data))
    return targz_of(tar_member(name, data))


def with_members(kind: str, names: list[str]) -> bytes:
    """A package of the given names; a name ending in '/' is a directory."""
    if kind == "zip":
        directory = (stat.S_IFDIR | 0o755) << 16
        return zip_of(
            *(
                RawZipEntry(n, external_attr=directory) if n.endswith("/") else RawZipEntry(n, b"x")
                for n in names
            )
        )
    members = [
        tar_member(n, kind=tarfile.DIRTYPE) if n.endswith("/") else tar_member(n, b"x")
        for n in names
    ]
    return targz_of(*members)


def build(kind: str, members: list[tuple[str, bytes]]) -> bytes:
    if kind == "zip":
        return archives.make_zip(members)
    return archives.make_targz(members)


@pytest.fixture
def no_disk_writes(monkeypatch, tmp_path):
    """Fail on any file opened for writing, and check the temp directory stays empty."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    real_open, real_os_open = builtins.open, os.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def guarded_open(file, mode="r", *args, **kwargs):
        assert not set(mode) & set("wax+"), f"opened {file!r} for writing"
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        assert not flags & write_flags, f"opened {path!r} for writing"
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    yield
    monkeypatch.undo()
    assert list(scratch.iterdir()) == []


@pytest.fixture
def no_inflation(monkeypatch):
    """Fail if anything is decompressed: proves a refusal came from the headers alone."""

    def refuse(*args, **kwargs):
        raise AssertionError("decompression started")

    monkeypatch.setattr(zlib, "decompressobj", refuse)


# --- good archives ---------------------------------------------------------------------------

GOOD = [
    ("manifest.yaml", MANIFEST),
    ("logo.png", b"\x89PNG\r\n\x1a\n" + os.urandom(2000)),
    ("files/", b""),
    ("files/app.conf.j2", b"port = {{ params.port }}\n" * 50),
    ("files/deep/er/note.txt", "héllo wörld".encode()),
    ("files/empty", b""),
    ("images/app.tar", archives.tar_member("layer.tar", b"x" * 3000) + archives.tar_end()),
]
GOOD_FILES = {name: data for name, data in GOOD if not name.endswith("/")}


@pytest.mark.parametrize("kind", KINDS)
def test_a_good_archive_opens_with_names_sizes_and_contents(kind):
    with open_archive(io.BytesIO(build(kind, GOOD))) as opened:
        assert isinstance(opened, PackageArchive)
        assert opened.kind == kind
        assert opened.names == sorted(GOOD_FILES)
        for name, data in GOOD_FILES.items():
            assert opened.size_of(name) == len(data)
            assert opened.read(name) == data
            assert opened.open(name).read() == data


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["missing.txt", "files", "files/"])
def test_reading_a_name_that_is_not_a_file_raises_a_key_error(kind, name):
    with open_archive(io.BytesIO(build(kind, GOOD))) as opened:
        with pytest.raises(MemberNotFoundError, match="no such file") as caught:
            opened.read(name)
        assert isinstance(caught.value, KeyError)
        assert name in str(caught.value)
        with pytest.raises(MemberNotFoundError):
            opened.size_of(name)


@pytest.mark.parametrize("kind", KINDS)
def test_an_archive_opened_from_a_path_closes_its_file(kind, tmp_path, monkeypatch):
    path = tmp_path / f"package.{kind}"
    path.write_bytes(build(kind, GOOD))
    opened_files = []
    real_open = builtins.open
    monkeypatch.setattr(
        builtins,
        "open",
        lambda *a, **k: opened_files.append(real_open(*a, **k)) or opened_files[-1],
    )
    with open_archive(path) as opened:
        assert opened.read("manifest.yaml") == MANIFEST
    monkeypatch.undo()
    assert [f.closed for f in opened_files] == [True]
    with pytest.raises(ValueError, match="closed"):
        opened.read("manifest.yaml")


@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_passed_in_stays_open(kind):
    stream = io.BytesIO(build(kind, GOOD))
    with open_archive(stream) as opened:
        assert opened.read("manifest.yaml") == MANIFEST
    assert not stream.closed


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_archive_closes_its_file(kind, tmp_path, monkeypatch):
    path = tmp_path / f"bad.{kind}"
    path.write_bytes(build(kind, GOOD) + b"junk")
    opened_files = []
    real_open = builtins.open
    monkeypatch.setattr(
        builtins,
        "open",
        lambda *a, **k: opened_files.append(real_open(*a, **k)) or opened_files[-1],
    )
    with pytest.raises(CorruptArchiveError):
        open_archive(path)
    monkeypatch.undo()
    assert [f.closed for f in opened_files] == [True]


def test_a_stream_that_cannot_seek_is_buffered_in_memory():
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            return self._data.readinto(buffer)

    opened = open_archive(Pipe(archives.make_targz(GOOD)))
    assert opened.read("manifest.yaml") == MANIFEST


def test_tar_written_from_dot_has_its_names_normalised():
    """`tar -C dir -czf pkg.tar.gz .` prefixes every name with './' and adds a './' entry."""
    data = archives.make_targz([("./", b""), ("./manifest.yaml", MANIFEST), ("./files/a", b"a")])
    assert open_archive(io.BytesIO(data)).names == ["files/a", "manifest.yaml"]


def test_zip_with_data_descriptors_opens():
    """zipfile writing to a pipe puts sizes in a descriptor after the data."""

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, chunk) -> int:
            self.data += chunk
            return len(chunk)

    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as written:
        for name, data in GOOD:
            with written.open(name, "w") as member:
                member.write(data)
    opened = open_archive(io.BytesIO(bytes(pipe.data)))
    assert opened.read("files/app.conf.j2") == GOOD_FILES["files/app.conf.j2"]


@pytest.mark.parametrize("signature", [True, False])
def test_zip_with_info_zip_style_descriptors_opens(signature):
    content = b"streamed " * 100
    packed = archives.deflate_raw(content)
    entry = RawZipEntry(
        "files/a", content, descriptor=archives.descriptor(content, len(packed), signature)
    )
    assert open_archive(io.BytesIO(zip_of(entry))).read("files/a") == content


def test_zip_descriptor_that_disagrees_is_refused():
    content = b"streamed " * 100
    lying = archives.descriptor(b"other", len(archives.deflate_raw(content)))
    refused(
        zip_of(RawZipEntry("files/a", content, descriptor=lying)),
        CorruptArchiveError,
        "files/a",
        "data descriptor disagrees",
    )


def test_large_tar_members_are_read_back_by_decompressing_again():
    """Members above the in-memory size are re-read from decompressor checkpoints."""
    big = [(f"files/big{n}.bin", os.urandom(5 * MiB + n)) for n in range(3)]
    small = [("manifest.yaml", MANIFEST), ("files/zz.txt", b"last")]
    data = archives.make_targz(small[:1] + big + small[1:], level=1)
    opened = open_archive(io.BytesIO(data))
    for name, content in reversed(big + small):
        assert opened.read(name) == content
    with opened.open("files/big1.bin") as stream:
        assert stream.read(1000) == big[1][1][:1000]
        assert stream.read() == big[1][1][1000:]


def test_a_small_zip_member_may_compress_as_well_as_it_likes():
    """The ratio limit applies to zip members above `ratio_floor`, each judged alone."""
    zeros = bytes(DEFAULT_LIMITS.ratio_floor)
    data = archives.make_zip([("manifest.yaml", MANIFEST), ("files/zeros", zeros)])
    assert open_archive(io.BytesIO(data)).read("files/zeros") == zeros


def test_a_tar_gz_is_judged_by_its_running_ratio():
    """A tar.gz has one compressed stream: its running ratio is checked past `ratio_floor`."""
    zeros = bytes(DEFAULT_LIMITS.ratio_floor // 2)
    mixed = [("manifest.yaml", MANIFEST), ("files/zeros", zeros), ("files/r", os.urandom(MiB))]
    assert open_archive(io.BytesIO(archives.make_targz(mixed))).read("files/zeros") == zeros
    only_zeros = [("manifest.yaml", MANIFEST), ("files/zeros", zeros * 3)]
    refused(archives.make_targz(only_zeros), ArchiveLimitError, "files/zeros", "compression ratio")


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"PK\x03\x04rest", "zip"),
        (b"PK\x05\x06", "zip"),
        (b"\x1f\x8b\x08\x00", "tar.gz"),
        (b"\x1f\x8b\x07", None),  # gzip with an unknown method
        (b"BZh91AY&SY", None),
        (b"", None),
        (b"hello", None),
    ],
)
def test_sniff_kind(head, kind):
    assert sniff_kind(head) == kind


@pytest.mark.parametrize("kind", KINDS)
def test_a_member_changed_after_validation_is_refused_when_read(kind):
    """`read` checks the data again: a file swapped underneath is not trusted."""
    content = os.urandom(3 * MiB)
    if kind == "zip":
        data = archives.make_zip(
            [("manifest.yaml", MANIFEST), ("files/blob", content)], zipfile.ZIP_STORED
        )
    else:
        data = archives.make_targz([("manifest.yaml", MANIFEST), ("files/blob", content)], level=0)
    stream = io.BytesIO(data)
    opened = open_archive(stream)
    position = data.index(content[:64]) + 1000
    stream.getbuffer()[position] ^= 0xFF
    with pytest.raises(CorruptArchiveError, match="files/blob"):
        opened.read("files/blob")


# --- D22: traversal and other unsafe names ---------------------------------------------------

UNSAFE_NAMES = [
    ("../x", UnsafeMemberError, "traversal"),
    ("a/../../b", UnsafeMemberError, "traversal"),
    ("files/..", UnsafeMemberError, "traversal"),
    ("./../x", UnsafeMemberError, "traversal"),
    ("/abs", UnsafeMemberError, "absolute path"),
    ("/", UnsafeMemberError, "absolute path"),
    ("C:\\x", UnsafeMemberError, "drive letter"),
    ("C:x", UnsafeMemberError, "drive letter"),
    ("files\\app.conf", UnsafeMemberError, "backslash"),
    ("..\\..\\x", UnsafeMemberError, "backslash"),
    ("a//b", UnsafeMemberError, "empty path segment"),
    ("a/./b", UnsafeMemberError, "'.' path segment"),
    ("a\x01b", UnsafeMemberError, "control character"),
    ("a\x7fb", UnsafeMemberError, "control character"),
    # Hole 14: bidirectional controls make "files/\u202egnp.sh" read as "files/hs.png".
    ("files/\u202egnp.sh", UnsafeMemberError, "bidirectional control character U+202E"),
    ("files/a\u2066b", UnsafeMemberError, "bidirectional control character U+2066"),
    ("files/a\u200fb", UnsafeMemberError, "bidirectional control character U+200F"),
    ("x" * 300, ArchiveLimitError, "300 bytes long"),
    ("d/" * 19 + "f", ArchiveLimitError, "20 levels deep"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("name", "error", "problem"), UNSAFE_NAMES)
def test_unsafe_member_names_are_refused(kind, name, error, problem):
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in name)
    refused(with_member(kind, name), error, shown, problem)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (zip_of(RawZipEntry("files/", b"")), "type bits and trailing '/' disagree"),
        (targz_of(tar_member("files/", b"x")), "empty path segment"),
    ],
    ids=KINDS,
)
def test_a_regular_file_named_like_a_directory_is_refused(data, problem):
    refused(data, UnsafeMemberError, "files", problem)


@pytest.mark.parametrize(
    ("raw", "flags", "problem"),
    [
        (b"a\x00b", 0, "control character"),
        (b"caf\xc3\xa9\xff.txt", archives.UTF8_FLAG, "not valid UTF-8"),
        (b"caf\x82.txt", 0, "ambiguous"),  # cp437 'é' without the UTF-8 flag
    ],
)
def test_zip_names_must_be_plain_utf8(raw, flags, problem):
    refused(
        zip_of(RawZipEntry(raw, b"x", flags=flags)),
        UnsafeMemberError,
        "caf" if b"caf" in raw else "a",
        problem,
    )


def test_zip_unicode_path_field_may_not_name_another_file():
    extra = archives.extra_field(
        0x7075, b"\x01" + zlib.crc32(b"a.txt").to_bytes(4, "little") + b"../evil"
    )
    refused(
        zip_of(RawZipEntry("a.txt", b"x", extra=extra)), UnsafeMemberError, "a.txt", "ambiguous"
    )


def test_tar_names_must_be_utf8():
    name = b"bad\xff.txt".decode("utf-8", "surrogateescape")
    refused(
        targz_of(tar_member(name, b"x", fmt=tarfile.GNU_FORMAT)),
        UnsafeMemberError,
        "bad",
        "not valid UTF-8",
    )


def test_a_long_tar_name_in_a_pax_header_is_still_checked():
    refused(
        targz_of(tar_member("files/" + "x" * 150 + "/../../../etc/passwd", b"x")),
        UnsafeMemberError,
        "etc/passwd",
        "traversal",
    )


# --- D23: links and special files ------------------------------------------------------------

ZIP_SPECIAL = [
    (
        "symlink by mode",
        RawZipEntry("files/link", b"/etc/passwd", external_attr=(stat.S_IFLNK | 0o777) << 16),
        "symbolic link",
    ),
    (
        "symlink by ASi",
        RawZipEntry(
            "files/link", b"x", extra=archives.asi_unix_extra(stat.S_IFLNK | 0o777, b"/etc/passwd")
        ),
        "symbolic link",
    ),
    (
        "hard link by ASi",
        RawZipEntry(
            "files/link",
            b"x",
            extra=archives.asi_unix_extra(stat.S_IFREG | 0o644, b"manifest.yaml"),
        ),
        "hard link",
    ),
    (
        "link by PKWARE unix",
        RawZipEntry(
            "files/link", b"x", extra=archives.extra_field(0x000D, bytes(12) + b"/etc/passwd")
        ),
        "link",
    ),
    ("device", RawZipEntry("files/dev", external_attr=(stat.S_IFCHR | 0o600) << 16), "device"),
    ("FIFO", RawZipEntry("files/fifo", external_attr=(stat.S_IFIFO | 0o600) << 16), "FIFO"),
    ("socket", RawZipEntry("files/sock", external_attr=(stat.S_IFSOCK | 0o600) << 16), "socket"),
    (
        "directory without slash",
        RawZipEntry("files/dir", external_attr=(stat.S_IFDIR | 0o755) << 16),
        "directory",
    ),
]


@pytest.mark.parametrize(
    ("entry", "problem"), [case[1:] for case in ZIP_SPECIAL], ids=[case[0] for case in ZIP_SPECIAL]
)
def test_zip_links_and_special_files_are_refused(entry, problem):
    refused(zip_of(entry), UnsafeMemberError, str(entry.name), problem)


TAR_SPECIAL = [
    (tarfile.SYMTYPE, "/etc/passwd", "symbolic link to '/etc/passwd'"),
    (tarfile.LNKTYPE, "manifest.yaml", "hard link to 'manifest.yaml'"),
    (tarfile.CHRTYPE, "", "device"),
    (tarfile.BLKTYPE, "", "device"),
    (tarfile.FIFOTYPE, "", "FIFO"),
    (tarfile.CONTTYPE, "", "unsupported member type"),
    (b"Z", "", "unsupported member type"),
]


@pytest.mark.parametrize(("kind", "target", "problem"), TAR_SPECIAL)
def test_tar_links_and_special_files_are_refused(kind, target, problem):
    refused(
        targz_of(tar_member("files/special", kind=kind, linkname=target)),
        UnsafeMemberError,
        "files/special",
        problem,
    )


def test_tar_sparse_files_are_refused():
    member = tar_member("files/sparse", b"", kind=tarfile.GNUTYPE_SPARSE, fmt=tarfile.GNU_FORMAT)
    refused(targz_of(member), UnsafeMemberError, "files/sparse", "sparse")


def test_tar_directory_with_data_is_refused():
    """tarfile would read the data as headers; other readers would skip it."""
    member = tar_member("files", size=512, kind=tarfile.DIRTYPE) + b"x" * 512
    refused(targz_of(member), CorruptArchiveError, "files", "directory entry with data")


# --- D24: bombs: ratio, nested archives, lying headers ---------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_high_ratio_member_is_refused(kind):
    data = build(kind, [("manifest.yaml", MANIFEST), ("files/zeros.bin", bytes(5 * MiB))])
    refused(data, ArchiveLimitError, "files/zeros.bin", "compression ratio")


def test_zip_ratio_is_judged_from_the_headers_alone(no_inflation):
    data = archives.make_zip([("manifest.yaml", MANIFEST), ("files/zeros.bin", bytes(5 * MiB))])
    refused(data, ArchiveLimitError, "files/zeros.bin", "compression ratio")


NESTED = [
    ("zip", archives.make_zip([("a", b"a")])),
    ("gzip", archives.gzip_bytes(b"hello")),
    ("bzip2", bz2.compress(b"hello")),
    ("xz", lzma.compress(b"hello")),
    ("tar", archives.tar_member("a", b"a") + archives.tar_end()),
    ("tar", archives.tar_member("a", b"a", fmt=tarfile.GNU_FORMAT) + archives.tar_end()),
    ("tar", archives.v7_tar(b"old")),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("inner", "content"), NESTED)
def test_nested_archives_are_refused_outside_images(kind, inner, content):
    data = build(kind, [("manifest.yaml", MANIFEST), ("files/inner.dat", content)])
    refused(data, UnsafeMemberError, "files/inner.dat", f"nested archive ({inner})")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["images/app.tar.gz", "images/app.zip", "images/app"])
def test_images_may_only_hold_tar_files(kind, name):
    data = build(kind, [("manifest.yaml", MANIFEST), (name, b"not checked here")])
    refused(data, UnsafeMemberError, name, "images/")


ZIP_LIES = [
    (
        "local header size differs from the central directory",
        RawZipEntry("files/a", b"x" * 100, local_size=10),
        CorruptArchiveError,
        "sizes in headers disagree",
    ),
    (
        "small declared size, much larger inflated data",
        RawZipEntry("files/a", b"x" * 1000, packed=archives.deflate_raw(bytes(MiB))),
        CorruptArchiveError,
        "more than the 1000 bytes",
    ),
    (
        "declared size larger than the data",
        RawZipEntry("files/a", b"x" * 1000, size=5000),
        CorruptArchiveError,
        "data is 1000 bytes, its header declares 5000",
    ),
    (
        "stored sizes that disagree",
        RawZipEntry("files/a", b"x" * 100, method=zipfile.ZIP_STORED, size=10),
        CorruptArchiveError,
        "stored",
    ),
    ("wrong CRC", RawZipEntry("files/a", b"x" * 100, crc=1234), CorruptArchiveError, "CRC"),
    (
        "local name differs",
        RawZipEntry("files/a", b"x", local_name=b"../../evil"),
        CorruptArchiveError,
        "local header names '../../evil'",
    ),
    (
        "trailing bytes in the deflate data",
        RawZipEntry("files/a", b"x", packed=archives.deflate_raw(b"x") + b"junk"),
        CorruptArchiveError,
        "after the end of the deflate data",
    ),
    (
        "encrypted",
        RawZipEntry("files/a", b"x", flags=0x1),
        CorruptArchiveError,
        "encrypted",
    ),
    (
        "bzip2 method",
        RawZipEntry("files/a", b"x", method=zipfile.ZIP_BZIP2, packed=bz2.compress(b"x")),
        CorruptArchiveError,
        "compression method 12",
    ),
    (
        "zip64 extra field",
        RawZipEntry("files/a", b"x", extra=archives.extra_field(1, bytes(16))),
        CorruptArchiveError,
        "zip64",
    ),
    (
        "member comment",
        RawZipEntry("files/a", b"x", comment=b"hi"),
        CorruptArchiveError,
        "comment",
    ),
]


@pytest.mark.parametrize(
    ("entry", "error", "problem"), [c[1:] for c in ZIP_LIES], ids=[c[0] for c in ZIP_LIES]
)
def test_zip_headers_that_lie_are_refused(entry, error, problem):
    refused(zip_of(entry), error, "files/a", problem)


@pytest.mark.parametrize(
    "data",
    [
        archives.build_zip(
            [RawZipEntry("files/a", b"x" * 100), RawZipEntry("files/b", b"y" * 100, offset=0)]
        ),
        archives.overlapping_zip(),
    ],
    ids=["same local header", "quoted local header"],
)
def test_overlapping_zip_entries_are_refused(data):
    refused(data, CorruptArchiveError, "files/", "overlaps member 'files/a")


TAR_LIES = [
    (
        "size smaller than the data",
        tar_member("files/a", os.urandom(5000), size=10),
        CorruptArchiveError,
        "non-zero data after the end",
    ),
    (
        "size larger than the data",
        tar_member("files/a", b"x" * 100, size=100_000),
        CorruptArchiveError,
        "malformed",
    ),
    (
        "negative size",
        tar_member("files/a", b"x", size=-(2**40), fmt=tarfile.GNU_FORMAT),
        CorruptArchiveError,
        "negative size",
    ),
    (
        "oversized member",
        tar_member("files/a", size=200 * MiB, fmt=tarfile.GNU_FORMAT),
        ArchiveLimitError,
        "declares 209715200 bytes",
    ),
]


@pytest.mark.parametrize(
    ("member", "error", "problem"), [c[1:] for c in TAR_LIES], ids=[c[0] for c in TAR_LIES]
)
def test_tar_headers_that_lie_are_refused(member, error, problem):
    refused(targz_of(member), error, problem)


def test_gzip_trailer_that_lies_is_refused():
    data = bytearray(targz_of(tar_member("files/a", b"x" * 100)))
    data[-1] ^= 0x01  # the length in the gzip trailer
    refused(bytes(data), CorruptArchiveError, "invalid gzip data")


@pytest.mark.parametrize("kind", KINDS)
def test_the_unpacked_total_is_limited(kind):
    members = [("manifest.yaml", MANIFEST)] + [(f"files/{n}", os.urandom(40_000)) for n in range(4)]
    limits = Limits(max_unpacked_bytes=100_000)
    refused(build(kind, members), ArchiveLimitError, "files/2", "unpacked total", limits=limits)


# 10 GB bombs: genuine deflate data that would unpack to 10 GiB; refused without inflating it.
BOMBS = [
    (
        "tar.gz declaring 10 GiB",
        lambda: archives.targz_bomb(),
        ArchiveLimitError,
        "declares 10737418240 bytes",
    ),
    (
        "tar.gz declaring 1 KiB",
        lambda: archives.targz_bomb(declared=1024),
        ArchiveLimitError,
        "compression ratio",
    ),
    (
        "zip declaring 1 MiB",
        lambda: archives.zip_bomb(declared=MiB),
        CorruptArchiveError,
        "more than the 1048576 bytes",
    ),
    (
        "zip declaring 4 GiB",
        lambda: archives.zip_bomb(declared=0xFFFFFFFE),
        ArchiveLimitError,
        "declares 4294967294 bytes",
    ),
]


@pytest.mark.parametrize(
    ("make", "error", "problem"), [b[1:] for b in BOMBS], ids=[b[0] for b in BOMBS]
)
def test_a_10_gb_bomb_is_refused_fast_and_writes_nothing(make, error, problem, no_disk_writes):
    data = make()
    assert len(data) < DEFAULT_LIMITS.max_archive_bytes
    started = time.monotonic()
    refused(data, error, "files/zeros.bin", problem)
    assert time.monotonic() - started < 1.0  # a generous guard: inflating 10 GiB takes ~10 s


def test_the_10_gb_bomb_construction_is_genuine():
    """The repeated flushed block really inflates, and the gzip trailer (CRC, size) is right."""
    for mib in (1, 3, 64):
        stream = archives.gzip_zero_bomb(b"head", mib, b"tail")
        inflater = zlib.decompressobj(31)
        out = inflater.decompress(stream)
        assert inflater.eof and not inflater.unused_data
        assert len(out) == 8 + mib * MiB and out[:4] == b"head" and out[-4:] == b"tail"
        assert out.count(0) == mib * MiB
    assert archives.crc32_of_zeros(3 * MiB + 5) == zlib.crc32(bytes(3 * MiB + 5))
    assert len(archives.targz_bomb()) < 11 * MiB


# --- D25: duplicates, trailing data, concatenation -------------------------------------------

NFC = unicodedata.normalize("NFC", "files/café")
NFD = unicodedata.normalize("NFD", "files/café")
DUPLICATES = [
    (["files/a.txt", "files/a.txt"], "duplicate of 'files/a.txt'"),
    (["README", "readme"], "ignoring case"),
    (["files/Straße", "files/STRASSE"], "ignoring case"),
    ([NFC, NFD], "Unicode normalisation"),
    (["data/", "data"], "a file and a directory"),
    (["data", "data/"], "a file and a directory"),
    (["files/a", "files/a/b"], "uses the file 'files/a' as a directory"),
    (["files/A/b", "files/a"], "is a file, but 'files/A/b' uses it as a directory"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("names", "problem"), DUPLICATES)
def test_duplicate_names_are_refused(kind, names, problem):
    refused(with_members(kind, names), DuplicateMemberError, names[-1].rstrip("/"), problem)


@pytest.mark.parametrize("kind", KINDS)
def test_directories_and_their_files_are_not_duplicates(kind):
    opened = open_archive(
        io.BytesIO(with_members(kind, ["files/", "files/a/", "files/a/b", "files/A.txt"]))
    )
    assert opened.names == ["files/A.txt", "files/a/b", "manifest.yaml"]


ZIP = archives.make_zip([("manifest.yaml", MANIFEST)])
TARGZ = archives.make_targz([("manifest.yaml", MANIFEST)])
TRAILING = [
    ("zip + junk", ZIP + b"junk", "4 bytes of trailing data after the end of the zip"),
    (
        "zip with a comment",
        archives.build_zip([RawZipEntry("a", b"x")], comment=b"hello"),
        "comments are not allowed",
    ),
    ("junk + zip", b"junk" + ZIP, "not a zip or tar.gz archive"),
    ("zip + zip", ZIP + archives.make_zip([("other.yaml", b"x")]), "concatenated"),
    (
        "hidden local entry + zip",
        archives.build_zip(
            [RawZipEntry("a", b"x")], before=archives.build_zip([RawZipEntry("hidden", b"x")])[:40]
        ),
        "before this member",
    ),
    ("tar.gz + junk", TARGZ + b"junk", "4 bytes of trailing data after the gzip stream"),
    ("tar.gz + tar.gz", TARGZ + archives.make_targz([("other.yaml", b"x")]), "second gzip stream"),
    (
        "tar + tar in one gzip",
        archives.gzip_bytes(
            tar_member("a", b"x") + archives.tar_end() + tar_member("b", b"y") + archives.tar_end()
        ),
        "non-zero data after the end of the tar archive",
    ),
    (
        "tar with garbage after its end",
        archives.gzip_bytes(tar_member("a", b"x") + archives.tar_end() + b"garbage"),
        "non-zero data after the end",
    ),
    (
        "tar without an end marker",
        targz_of(tar_member("a", b"x"), end=False),
        "end-of-archive marker",
    ),
    (
        "gzip of something else",
        archives.gzip_bytes(b"just text, not a tar archive" * 30),
        "does not hold a tar archive",
    ),
    (
        "garbage",
        os.urandom(1000).replace(b"PK", b"pk").replace(b"\x1f\x8b", b"xx"),
        "not a zip or tar.gz archive",
    ),
    ("empty", b"", "not a zip or tar.gz archive"),
]


@pytest.mark.parametrize(
    ("data", "problem"), [t[1:] for t in TRAILING], ids=[t[0] for t in TRAILING]
)
def test_trailing_and_concatenated_data_is_refused(data, problem):
    refused(data, CorruptArchiveError, problem)


# --- D26: very many tiny members --------------------------------------------------------------

MANY = 30_000


def test_a_zip_of_tens_of_thousands_of_members_is_refused_from_its_end_record(no_inflation):
    data = archives.build_zip(
        RawZipEntry(f"f{n}", b"", method=zipfile.ZIP_STORED) for n in range(MANY)
    )
    started = time.monotonic()
    refused(data, ArchiveLimitError, f"{MANY} members, limit {DEFAULT_LIMITS.max_members}")
    assert time.monotonic() - started < 0.1


def test_a_tar_of_tens_of_thousands_of_members_stops_at_the_limit(no_disk_writes):
    members = (tar_member(f"f{n}", b"x", fmt=tarfile.USTAR_FORMAT) for n in range(MANY))
    data = archives.gzip_bytes(b"".join(members) + archives.tar_end())

    class CountingReader(io.BytesIO):
        read_bytes = 0

        def read(self, size=-1):
            chunk = super().read(size)
            CountingReader.read_bytes += len(chunk)
            return chunk

    started = time.monotonic()
    with pytest.raises(ArchiveLimitError, match=f"more than {DEFAULT_LIMITS.max_members} members"):
        open_archive(CountingReader(data))
    assert time.monotonic() - started < 1.0
    assert CountingReader.read_bytes < len(data)  # stopped before the end


def test_a_tar_member_count_limit_is_configurable():
    data = archives.make_targz([("manifest.yaml", MANIFEST), ("files/", b""), ("files/a", b"")])
    refused(data, ArchiveLimitError, "files/a", "more than 2 members", limits=Limits(max_members=2))


def test_extended_tar_headers_are_bounded():
    big_pax = tarfile.TarInfo("files/a")
    big_pax.pax_headers = {"comment": "x" * 100_000}
    member = big_pax.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")
    refused(targz_of(member), ArchiveLimitError, "extended header")


# --- D27: the archive's own size ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_an_archive_over_the_size_limit_is_refused(kind, tmp_path):
    data = build(kind, [("manifest.yaml", MANIFEST), ("files/blob", os.urandom(50_000))])
    limits = Limits(max_archive_bytes=10_000)
    refused(data, ArchiveLimitError, f"archive is {len(data)} bytes, limit 10000", limits=limits)
    path = tmp_path / "big"
    path.write_bytes(data)
    with pytest.raises(ArchiveLimitError, match="limit 10000"):
        open_archive(path, limits)
