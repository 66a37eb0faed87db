"""Upload bounds: size (D27), a full blob store (C19), the upload rate (F39).

A rejected upload, whatever the reason, answers a problem and leaves nothing behind: no row
in packages or package_versions, no audit event, and no file under BLOB_DIR (neither a blob
in sha256/ nor a temporary file in tmp/).

The app here is built with a small MAX_UPLOAD_BYTES (64 KiB); a test may change any setting
with `@pytest.mark.parametrize("overrides", [{...}])`. The size limit is exercised on a
real HTTP server too (werkzeug, in a thread), to send a chunked body that has no
Content-Length, and the full disk is a real tmpfs mounted as BLOB_DIR.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import io
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from catalog.models import AuditEvent, Package, PackageVersion
from catalog.services import blobs as blobs_module
from tests import archives
from tests.integration.conftest import manifest_doc, package_bytes

KiB = 1024
MiB = 1024 * KiB
LIMIT = 64 * KiB  # MAX_UPLOAD_BYTES of this module's app
PROBLEM_JSON = "application/problem+json"
GZIP = {"Content-Type": "application/gzip"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64  # the catalog checks the signature only


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def overrides() -> dict:
    """This test's settings on top of the module's; parametrize it to change them."""
    return {}


@pytest.fixture
def blob_dir(request, tmp_path) -> Iterator[Path]:
    """BLOB_DIR: a plain directory, or with `indirect` param "tmpfs" a 256 KiB tmpfs."""
    path = tmp_path / "blobs"
    if getattr(request, "param", None) != "tmpfs":
        yield path
        return
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"C19 needs a real full disk: mounting a tmpfs failed ({mounted.stderr.strip()}); "
            "run the integration tests as root (or with CAP_SYS_ADMIN)",
            pytrace=False,
        )
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", str(path)], check=True)


@pytest.fixture
def app_config(blob_dir, overrides) -> dict:
    """conftest's app with a small upload limit, this module's BLOB_DIR and the test's settings."""
    return {"BLOB_DIR": str(blob_dir), "MAX_UPLOAD_BYTES": LIMIT, **overrides}


@pytest.fixture
def publisher(make_caller):
    return make_caller("acme", "publisher")


# --- helpers ----------------------------------------------------------------------------------


def stored_files(blob_dir: Path) -> list[str]:
    """Every file of the blob store: blobs under sha256/, temporary files under tmp/."""
    return sorted(
        str(p.relative_to(blob_dir))
        for sub in ("sha256", "tmp")
        for p in (blob_dir / sub).rglob("*")
        if not p.is_dir()
    )


def row_counts(app) -> dict[str, int]:
    sessionmaker = app.extensions["catalog"]["sessionmaker"]
    with sessionmaker() as session:
        return {
            "packages": session.scalar(select(func.count()).select_from(Package)),
            "package_versions": session.scalar(select(func.count()).select_from(PackageVersion)),
            "publish_events": session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "package.publish")
            ),
        }


NOTHING = {"packages": 0, "package_versions": 0, "publish_events": 0}


def assert_nothing_left(app, blob_dir: Path) -> None:
    assert row_counts(app) == NOTHING
    assert stored_files(blob_dir) == []


def assert_problem(response, status: int, *words: str) -> dict:
    """A problem+json answer with this status, whose title or detail says each word."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["type"] == "about:blank"
    said = f"{body['title']} {body.get('detail', '')}".lower()
    for word in words:
        assert word.lower() in said, body
    return body


def incompressible(size: int) -> bytes:
    return os.urandom(size)


def big_package(size: int, version: str = "1.0.0") -> bytes:
    """A valid package whose archive is a little over `size` bytes (random data in files/)."""
    return package_bytes(version=version, files={"files/blob.bin": incompressible(size)})


def tar_gz(*members: bytes) -> bytes:
    return archives.gzip_bytes(b"".join(members) + archives.tar_end())


def manifest_bytes(**extra) -> bytes:
    import yaml

    return yaml.safe_dump(manifest_doc(**extra)).encode()


def zip_upload(data: bytes) -> dict:
    return {"data": data, "headers": {"Content-Type": "application/zip"}}


# --- D27: the size limit, with and without Content-Length ---------------------------------------


def test_a_package_under_the_limit_is_accepted(client, publisher, app, blob_dir):
    data = big_package(LIMIT - 8 * KiB)
    assert len(data) < LIMIT
    response = client.post("/v1/packages", data=data, headers={**publisher.headers, **GZIP})
    assert response.status_code == 201, response.get_json()
    assert row_counts(app) == {"packages": 1, "package_versions": 1, "publish_events": 1}
    assert [f.split("/")[0] for f in stored_files(blob_dir)] == ["sha256"]


@pytest.mark.parametrize(
    "size",
    [LIMIT + 1, LIMIT + 64 * KiB + 1, 4 * MiB],
    ids=["just-over-streamed", "over-content-length-check", "far-over"],
)
def test_a_body_over_the_limit_with_content_length_is_413(client, publisher, app, blob_dir, size):
    """Over MAX_UPLOAD_BYTES: found while streaming; over it plus 64 KiB: before any read."""
    response = client.post("/v1/packages", data=bytes(size), headers={**publisher.headers, **GZIP})
    assert_problem(response, 413, "Content Too Large", str(LIMIT))
    assert_nothing_left(app, blob_dir)


@pytest.mark.parametrize(
    "size", [LIMIT + 1, LIMIT + 64 * KiB + 1], ids=["file-over-limit", "body-over-limit"]
)
def test_a_multipart_upload_over_the_limit_is_413(client, publisher, app, blob_dir, size):
    data = {"file": (io.BytesIO(bytes(size)), "big.tar.gz", "application/gzip")}
    response = client.post(
        "/v1/packages", data=data, headers=publisher.headers, content_type="multipart/form-data"
    )
    assert_problem(response, 413, "Content Too Large", str(LIMIT))
    assert_nothing_left(app, blob_dir)


class ReadCounter:
    """WSGI middleware: how many body bytes the application read, and when it answered."""

    def __init__(self, wsgi_app, sent: list[int]) -> None:
        self.wsgi_app = wsgi_app
        self.sent = sent  # the client's running total, a one-item list
        self.read = 0
        self.sent_when_answered: int | None = None

    def __call__(self, environ, start_response):
        environ["wsgi.input"] = _CountingInput(environ["wsgi.input"], self)

        def counting_start_response(status, headers, exc_info=None):
            self.sent_when_answered = self.sent[0]
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, counting_start_response)


class _CountingInput(io.RawIOBase):
    def __init__(self, stream, counter: ReadCounter) -> None:
        self._stream = stream
        self._counter = counter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        self._counter.read += len(data)
        return len(data)


@pytest.fixture
def live_server(app):
    """The app on a real werkzeug server (threaded) on 127.0.0.1 and a free port."""
    sent = [0]
    counter = ReadCounter(app.wsgi_app, sent)
    app.wsgi_app = counter
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="upload-test-server")
    thread.start()
    try:
        yield server, counter, sent
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize("transfer", ["chunked", "content-length"])
def test_a_live_server_stops_reading_an_oversized_body_and_answers_413(
    live_server, publisher, app, blob_dir, transfer
):
    """Without Content-Length only counting can stop the body: the app reads little of it."""
    server, counter, sent = live_server
    total, piece = 32 * MiB, 64 * KiB

    def body() -> Iterator[bytes]:
        block = b"\x1f\x8b" + bytes(piece - 2)
        while sent[0] < total:
            sent[0] += piece
            yield block

    headers = {**publisher.headers, **GZIP}
    if transfer == "chunked":
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(total)
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=60)
    try:
        # The server may close before the client is done sending: its answer is still there.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.request(
                "POST",
                "/v1/packages",
                body=body(),
                headers=headers,
                encode_chunked=transfer == "chunked",
            )
        response = conn.getresponse()
        status, mimetype = response.status, response.getheader("Content-Type")
        payload = response.read()
    finally:
        conn.close()

    assert status == 413, payload
    assert mimetype == PROBLEM_JSON
    assert b"Content Too Large" in payload
    # The application stopped after the limit (plus the Content-Length allowance for
    # multipart framing and one read), and answered long before the client was done.
    max_read = app.config["MAX_CONTENT_LENGTH"] + blobs_module.CHUNK
    if transfer == "content-length":
        max_read = 0  # refused from the header alone
    assert counter.read <= max_read
    assert counter.sent_when_answered is not None
    assert counter.sent_when_answered < total // 2
    assert_nothing_left(app, blob_dir)


# --- a rejected upload leaves nothing behind ------------------------------------------------------

# The genuine 10 GiB bombs are about 10 MiB packed: this matrix runs with a 16 MiB limit.
BIG_LIMIT = 16 * MiB

REJECTED = [
    pytest.param(
        lambda: package_bytes(name="Not A Name"),
        GZIP,
        400,
        ["Invalid Package", "name"],
        id="bad-manifest-name",
    ),
    pytest.param(
        lambda: package_bytes(services={"web": {"image": "x:1", "privileged": True}}),
        GZIP,
        400,
        ["Invalid Package", "privileged"],
        id="manifest-asks-privileged",
    ),
    pytest.param(
        lambda: tar_gz(
            archives.tar_member("manifest.yaml", manifest_bytes()),
            archives.tar_member("../escape.txt", b"x"),
        ),
        GZIP,
        400,
        ["Invalid Package", "traversal"],
        id="tar-traversal",
    ),
    pytest.param(
        lambda: tar_gz(
            archives.tar_member("manifest.yaml", manifest_bytes()),
            archives.tar_member(
                "files/passwd", kind=tarfile.SYMTYPE, linkname="/etc/passwd", size=0
            ),
        ),
        GZIP,
        400,
        ["Invalid Package", "files/passwd"],
        id="tar-symlink",
    ),
    pytest.param(
        lambda: archives.build_zip(
            [
                archives.RawZipEntry("manifest.yaml", manifest_bytes()),
                archives.RawZipEntry("/etc/cron.d/evil", b"x"),
            ]
        ),
        {"Content-Type": "application/zip"},
        400,
        ["Invalid Package", "absolute path"],
        id="zip-absolute-path",
    ),
    pytest.param(
        lambda: archives.build_zip(
            [
                archives.RawZipEntry("manifest.yaml", manifest_bytes()),
                archives.RawZipEntry("files/a.txt", b"a"),
                archives.RawZipEntry("files/A.txt", b"b"),
            ]
        ),
        {"Content-Type": "application/zip"},
        400,
        ["Invalid Package", "files/"],
        id="zip-duplicate-names",
    ),
    pytest.param(archives.targz_bomb, GZIP, 413, ["files/zeros.bin"], id="targz-10GiB-bomb"),
    pytest.param(
        archives.zip_bomb,
        {"Content-Type": "application/zip"},
        400,
        ["files/zeros.bin", "inflates to more than"],
        id="zip-10GiB-bomb-lying-header",
    ),
    pytest.param(
        lambda: archives.zip_bomb(declared=0xFFFFFFFE),
        {"Content-Type": "application/zip"},
        413,
        ["files/zeros.bin", "declares 4294967294 bytes"],
        id="zip-bomb-declaring-4GiB",
    ),
    pytest.param(lambda: b"not an archive at all", GZIP, 400, ["Invalid Package"], id="garbage"),
    pytest.param(
        lambda: bytes(BIG_LIMIT + 1), GZIP, 413, ["Content Too Large"], id="too-big-streamed"
    ),
    pytest.param(
        lambda: bytes(BIG_LIMIT + MiB), GZIP, 413, ["Content Too Large"], id="too-big-declared"
    ),
]


@pytest.mark.parametrize("overrides", [{"MAX_UPLOAD_BYTES": BIG_LIMIT}])
@pytest.mark.parametrize(("make", "headers", "status", "words"), REJECTED)
def test_a_rejected_upload_leaves_no_row_and_no_file(
    client, publisher, app, blob_dir, make, headers, status, words
):
    data = make()
    response = client.post("/v1/packages", data=data, headers={**publisher.headers, **headers})
    assert_problem(response, status, *words)
    assert_nothing_left(app, blob_dir)


def test_a_rejected_upload_keeps_what_was_there(client, publisher, app, blob_dir):
    """A refusal removes only what it wrote: the published version and its blob stay."""
    ok = client.post("/v1/packages", data=package_bytes(), headers={**publisher.headers, **GZIP})
    assert ok.status_code == 201
    before_rows, before_files = row_counts(app), stored_files(blob_dir)
    again = client.post("/v1/packages", data=package_bytes(), headers={**publisher.headers, **GZIP})
    assert_problem(again, 409, "published already")
    bad = client.post(
        "/v1/packages",
        data=package_bytes(version="2.0.0", name="Bad Name"),
        headers={**publisher.headers, **GZIP},
    )
    assert_problem(bad, 400)
    assert row_counts(app) == before_rows
    assert stored_files(blob_dir) == before_files


# --- C19: the blob store is out of space --------------------------------------------------------


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


@pytest.mark.parametrize("overrides", [{"MAX_UPLOAD_BYTES": MiB}])
@pytest.mark.parametrize("blob_dir", ["tmpfs"], indirect=True)
def test_a_full_blob_store_answers_507_and_writes_nothing(client, publisher, app, blob_dir):
    """A real full disk: a 256 KiB tmpfs, filled to 32 KiB free, and a 96 KiB upload."""
    filler = blob_dir / "filler"
    with filler.open("wb") as out:
        out.write(bytes(free_bytes(blob_dir) - 32 * KiB))
    free_before = free_bytes(blob_dir)
    assert free_before <= 32 * KiB
    data = big_package(96 * KiB)

    response = client.post("/v1/packages", data=data, headers={**publisher.headers, **GZIP})

    body = assert_problem(response, 507, "Insufficient Storage", "out of space")
    assert "errno" not in body.get("detail", "").lower()
    assert row_counts(app) == NOTHING
    assert stored_files(blob_dir) == []  # the partial temporary file is gone
    assert free_bytes(blob_dir) == free_before

    # With room again the same upload goes through: the 507 was the disk, nothing else.
    filler.unlink()
    retry = client.post("/v1/packages", data=data, headers={**publisher.headers, **GZIP})
    assert retry.status_code == 201, retry.get_json()
    assert row_counts(app) == {"packages": 1, "package_versions": 1, "publish_events": 1}


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_enospc_on_fsync_is_507_and_writes_nothing(client, publisher, app, blob_dir, monkeypatch):
    monkeypatch.setattr(blobs_module.os, "fsync", _enospc)
    response = client.post(
        "/v1/packages", data=package_bytes(), headers={**publisher.headers, **GZIP}
    )
    assert_problem(response, 507, "out of space")
    assert_nothing_left(app, blob_dir)


def test_enospc_on_rename_is_507_and_forgets_the_logo(
    client, publisher, app, blob_dir, monkeypatch
):
    """The archive's rename into sha256/ fails after the logo blob was written."""
    real_replace = os.replace

    def replace(source, target):
        if Path(source).name.startswith("upload-"):
            _enospc()
        return real_replace(source, target)

    monkeypatch.setattr(blobs_module.os, "replace", replace)
    data = package_bytes(files={"logo.png": PNG})
    response = client.post("/v1/packages", data=data, headers={**publisher.headers, **GZIP})
    assert_problem(response, 507, "out of space")
    assert_nothing_left(app, blob_dir)


def test_enospc_creating_the_temporary_file_is_507(client, publisher, app, blob_dir, monkeypatch):
    monkeypatch.setattr(blobs_module.tempfile, "mkstemp", _enospc)
    response = client.post(
        "/v1/packages", data=package_bytes(), headers={**publisher.headers, **GZIP}
    )
    assert_problem(response, 507, "out of space")
    assert_nothing_left(app, blob_dir)


# --- F39: the upload rate, per token ------------------------------------------------------------


@pytest.mark.parametrize("overrides", [{"UPLOAD_RATE_LIMIT": "3/minute"}])
def test_a_burst_of_uploads_is_429_with_retry_after_for_that_token_only(
    client, make_caller, app, blob_dir
):
    acme = make_caller("acme", "publisher")
    globex = make_caller("globex", "publisher")

    for n in range(3):
        response = client.post(
            "/v1/packages",
            data=package_bytes(version=f"1.0.{n}"),
            headers={**acme.headers, **GZIP},
        )
        assert response.status_code == 201, response.get_json()

    files_before = stored_files(blob_dir)
    for n in range(3, 5):
        limited = client.post(
            "/v1/packages",
            data=package_bytes(version=f"1.0.{n}"),
            headers={**acme.headers, **GZIP},
        )
        assert_problem(limited, 429, "Too Many Requests", "3 per 1 minute")
        retry_after = limited.headers.get("Retry-After")
        assert retry_after is not None and retry_after.isdigit(), limited.headers
        assert 0 < int(retry_after) <= 60

    # Nothing of the refused uploads was read or kept.
    assert row_counts(app)["package_versions"] == 3
    assert stored_files(blob_dir) == files_before

    # Another tenant's token has its own budget in the same window.
    other = client.post(
        "/v1/packages",
        data=package_bytes(name="org.globex.web"),
        headers={**globex.headers, **GZIP},
    )
    assert other.status_code == 201, other.get_json()
    assert other.headers["X-RateLimit-Remaining"] == "2"

    # The limit is on uploads only: the limited token still reads.
    listed = client.get("/v1/packages", headers=acme.headers)
    assert listed.status_code == 200
