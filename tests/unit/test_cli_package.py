"""`catalogctl package init|build|validate` as a user runs them."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from catalogctl.main import main
from tests.conftest import EXAMPLES

FIVE_MISTAKES = """\
format: catalog/v1
name: NotReverseDns
version: 1.0
type: application
colour: blue
services:
  web:
    image: catalog-test/busybox:latest
    privileged: true
    ports:
      - {container: "eighty"}
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_init_creates_a_package_that_validates_and_builds(tmp_path, capsys):
    pkg = tmp_path / "my-app"
    code, out, _ = run(capsys, "package", "init", str(pkg), "--name", "org.acme.my-app")
    assert code == 0
    assert (pkg / "manifest.yaml").is_file()
    assert "org.acme.my-app" in (pkg / "manifest.yaml").read_text()

    code, out, err = run(capsys, "package", "validate", str(pkg))
    assert (code, err) == (0, "")
    assert "valid (org.acme.my-app 0.1.0)" in out

    code, out, _ = run(capsys, "package", "build", str(pkg), "-o", str(tmp_path / "a.tar.gz"))
    assert code == 0
    assert (tmp_path / "a.tar.gz").is_file()


def test_init_refuses_to_overwrite(tmp_path, capsys):
    run(capsys, "package", "init", str(tmp_path / "p"))
    code, _, err = run(capsys, "package", "init", str(tmp_path / "p"))
    assert code == 1
    assert "already exists" in err


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir()))
def test_building_twice_gives_identical_bytes(example, tmp_path, capsys):
    # A copy with fresh mtimes and another path must still give the same archive.
    copy = tmp_path / "copy"
    shutil.copytree(EXAMPLES / example, copy)
    first, second = tmp_path / "1.tar.gz", tmp_path / "2.tar.gz"
    assert run(capsys, "package", "build", str(EXAMPLES / example), "-o", str(first))[0] == 0
    code, out, _ = run(capsys, "package", "build", str(copy), "-o", str(second))
    assert code == 0
    assert first.read_bytes() == second.read_bytes()
    assert f"sha256:{sha256(second)}" in out


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir()))
def test_examples_validate_as_directory_and_archive(example, tmp_path, capsys):
    archive = tmp_path / f"{example}.tar.gz"
    assert run(capsys, "package", "validate", str(EXAMPLES / example))[0] == 0
    assert run(capsys, "package", "build", str(EXAMPLES / example), "-o", str(archive))[0] == 0
    code, _out, err = run(capsys, "package", "validate", str(archive))
    assert (code, err) == (0, "")


def test_five_mistakes_print_five_lines_each_with_its_path(tmp_path, capsys):
    pkg = tmp_path / "bad"
    pkg.mkdir()
    (pkg / "manifest.yaml").write_text(FIVE_MISTAKES)
    code, _out, err = run(capsys, "package", "validate", str(pkg))
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 5, err
    paths = {line.split(": ", 1)[0] for line in lines}
    assert paths == {
        "colour",
        "name",
        "version",
        "services.web.privileged",
        "services.web.ports[0].container",
    }


def test_invalid_package_is_not_written(tmp_path, capsys):
    pkg = tmp_path / "bad"
    pkg.mkdir()
    (pkg / "manifest.yaml").write_text(FIVE_MISTAKES)
    out_file = tmp_path / "out" / "bad.tar.gz"
    code, _, err = run(capsys, "package", "build", str(pkg), "-o", str(out_file))
    assert code == 1
    assert "services.web.privileged" in err
    assert list((tmp_path / "out").iterdir()) == []


def test_validate_refuses_an_unsafe_archive_with_one_line(tmp_path, capsys):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    path = tmp_path / "evil.tar.gz"
    path.write_bytes(buf.getvalue())
    code, _, err = run(capsys, "package", "validate", str(path))
    assert code == 1
    assert "../escape" in err
    assert "Traceback" not in err


def test_console_script_is_installed():
    # `pip install -e .` puts catalogctl beside the interpreter.
    exe = Path(sys.executable).with_name("catalogctl")
    result = subprocess.run([exe, "package", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    for command in ("init", "build", "validate"):
        assert command in result.stdout
