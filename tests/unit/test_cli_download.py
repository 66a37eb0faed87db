"""`catalogctl package download` checks what it received against the digest sent with it."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from catalogctl.main import main

ARCHIVE = b"\x1f\x8b" + bytes(range(256)) * 64
DIGEST = hashlib.sha256(ARCHIVE).hexdigest()


class _Archive(BaseHTTPRequestHandler):
    """Answers every GET with `body` and the headers of the test (`server.answer`)."""

    def do_GET(self) -> None:
        body, headers = self.server.answer  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Disposition", "attachment; filename=org.test.echo-1.0.0.tar.gz")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def server(monkeypatch, tmp_path) -> Iterator[ThreadingHTTPServer]:
    monkeypatch.setenv("CATALOGCTL_CONFIG", str(tmp_path / "catalogctl.yaml"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Archive)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def download(server, capsys, body: bytes, headers: dict[str, str], *target: str):
    server.answer = (body, headers)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    argv = ["package", "download", "org.test.echo", "1.0.0", "--url", url, "--token", "cat_x"]
    code = main([*argv, *target])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_download_that_matches_its_digest_is_written(server, capsys, tmp_path, monkeypatch):
    target = tmp_path / "echo.tar.gz"
    sent = {"ETag": f'"{DIGEST}"', "Digest": f"sha-256={DIGEST}"}
    code, _, err = download(server, capsys, ARCHIVE, sent, "-f", str(target))
    assert (code, err) == (0, f"wrote {target} ({len(ARCHIVE)} bytes, digest verified)\n")
    assert target.read_bytes() == ARCHIVE
    # The ETag alone is enough; the default name is the one the server gave.
    monkeypatch.chdir(tmp_path)
    code, _, _ = download(server, capsys, ARCHIVE, {"ETag": f'"{DIGEST}"'})
    assert code == 0
    assert (tmp_path / "org.test.echo-1.0.0.tar.gz").read_bytes() == ARCHIVE
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "echo.tar.gz",
        "org.test.echo-1.0.0.tar.gz",
    ]


def test_a_mismatch_fails_in_one_line_and_leaves_no_file(server, capsys, tmp_path):
    target = tmp_path / "echo.tar.gz"
    damaged = ARCHIVE[:-1] + b"\x00"
    sent = {"ETag": f'"{DIGEST}"', "Digest": f"sha-256={DIGEST}"}
    code, out, err = download(server, capsys, damaged, sent, "-f", str(target))
    assert code == 1
    assert err == (
        f"Error: org.test.echo 1.0.0: the archive received does not match its digest "
        f"(expected sha256:{DIGEST}, received sha256:{hashlib.sha256(damaged).hexdigest()}); "
        "nothing was written\n"
    )
    assert list(tmp_path.iterdir()) == []

    # Nothing reaches standard output either.
    code, out, err = download(server, capsys, damaged, sent, "-f", "-")
    assert (code, out) == (1, "")
    assert "does not match its digest" in err


def test_a_download_without_a_digest_is_refused(server, capsys, tmp_path):
    target = tmp_path / "echo.tar.gz"
    for sent in ({}, {"ETag": 'W/"weak"'}, {"Digest": "md5=abc"}):
        code, _, err = download(server, capsys, ARCHIVE, sent, "-f", str(target))
        assert code == 1, sent
        assert err == (
            "Error: org.test.echo 1.0.0: the catalog sent no digest of the archive (no Digest "
            "or ETag header), so it cannot be verified; nothing was written\n"
        )
    assert list(tmp_path.iterdir()) == []
