"""Deterministic building of a package directory into a `catalog/v1` tar.gz archive, checked
as the catalog will check it (`packages.package`)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, cast

from packages.errors import PackageError
from packages.limits import DEFAULT_LIMITS, Limits
from packages.package import LoadedPackage, load_package

# Editor, VCS and build droppings never belong in a package.
IGNORED_NAMES = frozenset({".git", ".hg", ".svn", "__pycache__", ".DS_Store", ".catalogignore"})
IGNORED_SUFFIXES = (".pyc", ".swp", "~")

# A fixed timestamp, owner and mode make the same tree give the same bytes.
EPOCH = 0


def package_files(root: str | os.PathLike) -> Iterator[tuple[str, Path]]:
    """Yield (archive name, path) for every file of a package directory, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise PackageError(f"{root} is not a directory")
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES)
        for name in filenames:
            if name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES):
                continue
            path = Path(dirpath, name)
            arcname = path.relative_to(root).as_posix()
            mode = path.lstat().st_mode
            if not stat.S_ISREG(mode):
                raise PackageError("links and special files cannot be packaged", path=arcname)
            found.append((arcname, path))
        for name in dirnames:
            if Path(dirpath, name).is_symlink():
                raise PackageError(
                    "links and special files cannot be packaged",
                    path=Path(dirpath, name).relative_to(root).as_posix(),
                )
    yield from sorted(found)


def _tar_info(arcname: str, path: Path) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    st = path.stat()
    info.size = st.st_size
    info.mtime = EPOCH
    info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _HashingWriter(io.RawIOBase):
    """Passes bytes through to `out` while hashing them."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.digest.update(b)
        return self.out.write(b)


def write_archive(root: str | os.PathLike, out: IO[bytes]) -> str:
    """Write the package directory as tar.gz to `out`; return the archive's sha256 digest."""
    sink = _HashingWriter(out)
    # filename="" and mtime=0 keep the gzip header free of names and times.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=EPOCH, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for arcname, path in package_files(root):
            with path.open("rb") as fh:
                tar.addfile(_tar_info(arcname, path), fh)
    return "sha256:" + sink.digest.hexdigest()


def build_package(root: str | os.PathLike, output: str | os.PathLike) -> str:
    """Build and validate a package; the output file appears only if it is valid.

    Returns the archive's digest.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".build-", suffix=".tar.gz", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            digest = write_archive(root, fh)
        load_package(tmp_name)
        os.replace(tmp_name, output)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return digest


def load_directory(root: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> LoadedPackage:
    """Validate a package directory exactly as its built archive would be validated."""
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as stream:
        write_archive(root, stream)
        # A binary stream, which the stubs type as IO[bytes] rather than BinaryIO.
        return load_package(cast(BinaryIO, stream), limits)
