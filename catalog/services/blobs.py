"""Content-addressed blob store on the filesystem: `sha256/ab/cd/<hex>`, written atomically."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from catalog.errors import InsufficientStorage, PayloadTooLarge

CHUNK = 256 * 1024


class BlobStore:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path_for(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64:
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / "sha256" / hexdigest[:2] / hexdigest[2:4] / hexdigest

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    @contextmanager
    def receive(self, stream: BinaryIO, max_bytes: int) -> Iterator[tuple[Path, str, int]]:
        """Copy a stream into a temporary file, counting and hashing as it goes.

        Yields (path, digest, size); the file is removed on leaving unless stored.
        A full disk (on create, write, flush, fsync or close) is InsufficientStorage.
        """
        with _disk_errors():
            fd, name = tempfile.mkstemp(dir=self.tmp, prefix="upload-")
        path = Path(name)
        try:
            digest = hashlib.sha256()
            size = 0
            with _disk_errors(), os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(f"the upload is larger than {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            yield path, "sha256:" + digest.hexdigest(), size
        finally:
            path.unlink(missing_ok=True)

    def store(self, source: Path, digest: str) -> bool:
        """Move a received file into place; False when that content was stored already.

        A full disk while making its directories or renaming is InsufficientStorage.
        """
        target = self.path_for(digest)
        if target.is_file():
            return False
        with _disk_errors():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        return True

    def store_bytes(self, data: bytes) -> tuple[str, bool]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.exists(digest):
            return digest, False
        with _disk_errors():
            fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        try:
            with _disk_errors(), os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            return digest, self.store(Path(name), digest)
        finally:
            Path(name).unlink(missing_ok=True)

    def delete(self, digest: str) -> None:
        self.path_for(digest).unlink(missing_ok=True)


def digest_of(blob: BinaryIO) -> str:
    """The digest (`sha256:<hex>`, as blobs are named) of what `blob` holds from where it
    stands, read in chunks."""
    found = hashlib.sha256()
    while chunk := blob.read(CHUNK):
        found.update(chunk)
    return "sha256:" + found.hexdigest()


@contextmanager
def _disk_errors() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage("the blob store is out of space") from None
        raise
