"""The worker's `Archives` check each blob against its digest before use, once per attempt."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest

from workers.deploy import inputs
from workers.deploy.inputs import Archives, ArchiveUnusable
from workers.deploy.prepare import PrepareError

MANIFEST = b"format: catalog/v1\nname: org.test.page\nversion: 1.0.0\ntype: library\n"


def archive_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("files/index.html", b"hello"), ("manifest.yaml", MANIFEST)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def stored(tmp_path) -> tuple[Path, str]:
    data = archive_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = tmp_path / digest.removeprefix("sha256:")
    path.write_bytes(data)
    return path, digest


def app_of(digest: str) -> dict:
    return {"name": "site", "package": "org.test.page", "version": "1.0.0", "digest": digest}


def test_a_blob_is_hashed_once_per_attempt_unless_it_changed(stored, monkeypatch):
    path, digest = stored
    hashed: list[str] = []
    real = inputs.digest_of
    monkeypatch.setattr(inputs, "digest_of", lambda blob: hashed.append(digest) or real(blob))
    archives = Archives(lambda _digest: path)
    archives.verify([app_of(digest), app_of(digest)])
    assert archives.read_member(digest, "files/index.html") == b"hello"
    assert len(hashed) == 1
    archives.close()

    # A new attempt (a new object) hashes again, and a file changed since is hashed again.
    again = Archives(lambda _digest: path)
    again.verify([app_of(digest)])
    path.write_bytes(path.read_bytes() + b"\x00")  # a size of its own: timestamps are coarse
    with pytest.raises(ArchiveUnusable) as raised:
        again.read_member(digest, "files/index.html")
    assert len(hashed) == 3
    assert str(raised.value).startswith(
        f"package org.test.page 1.0.0: the archive does not match its digest {digest} "
        "(the stored file holds sha256:"
    )
    again.close()


def test_a_damaged_or_missing_blob_is_a_prepare_error_naming_the_package(stored, tmp_path):
    path, digest = stored
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(damaged)
    archives = Archives(lambda _digest: path)
    named = "package org.test.page 1.0.0: the archive does not match its digest"
    with pytest.raises(PrepareError, match=re.escape(named)):
        archives.verify([app_of(digest)])
    # Read without a snapshot naming it: the digest alone.
    unnamed = f"a package: the archive does not match its digest {digest}"
    with pytest.raises(PrepareError, match=re.escape(unnamed)):
        Archives(lambda _digest: path).read_member(digest, "files/index.html")

    missing = Archives(lambda _digest: tmp_path / "gone")
    with pytest.raises(ArchiveUnusable) as raised:
        missing.verify([app_of(digest)])
    assert str(raised.value) == (
        f"package org.test.page 1.0.0: the archive {digest} is missing from the blob store"
    )
