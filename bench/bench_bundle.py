"""Benchmark (issue 14): bundle export and import of 10 packages with 10 MB of images each.

Ten images of ~10 MB each (a random layer over the test image) and ten packages running them
are published on catalog A; `catalogctl bundle export` writes them to one signed file and
`catalogctl bundle import` carries them into catalog B (another database, blob store and
API), each timed with MB/s over the bundle's size. The peer, measured in the same run: what
an operator does by hand without bundles, `docker load` of the same ten images (removed from
the engine first) plus uploading the ten archives to catalog C. Target: import within 1.5x of
the peer.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402
from stack import BIN, Stack  # noqa: E402

from tests.integration.conftest import package_bytes  # noqa: E402

PACKAGES = 10
IMAGE_MB = 10
TARGET_RATIO = 1.5


def make_images(client: docker.DockerClient, run: str) -> list[str]:
    references = []
    for n in range(PACKAGES):
        reference = f"catalog-bench/bundle-{run}-{n}:1"
        container = client.containers.create(
            "catalog-test/busybox:latest",
            ["sh", "-c", f"head -c {IMAGE_MB * 1024 * 1024} /dev/urandom > /blob"],
        )
        try:
            container.start()
            container.wait(timeout=60)
            repository, tag = reference.rsplit(":", 1)
            container.commit(repository=repository, tag=tag)
        finally:
            container.remove(force=True)
        references.append(reference)
    return references


def cli(*argv: str, api) -> float:
    started = time.perf_counter()
    token = api.headers["Authorization"].removeprefix("Bearer ")
    url = api.base.removesuffix("/v1")
    subprocess.run([BIN / "catalogctl", *argv, "--url", url, "--token", token], check=True,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    client = docker.from_env()
    run = uuid.uuid4().hex[:8]
    references: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as work:
        workdir = Path(work)
        stacks = [
            Stack(workdir / name, database_prefix=f"bench_bundle_{name}",
                  queue_prefix=f"bench-bundle-{name}", workers=0, concurrency=1)
            for name in "abc"
        ]  # fmt: skip
        try:
            for name in "abc":
                (workdir / name).mkdir()
            apis = [stack.start() for stack in stacks]
            references = make_images(client, run)
            return measure(client, apis, references, workdir)
        finally:
            for stack in stacks:
                stack.stop()
                stack.drop()
            for reference in references:
                with contextlib.suppress(docker.errors.DockerException):
                    client.images.remove(reference, force=True)


def measure(client, apis, references: list[str], workdir: Path) -> int:
    a, b, c = apis
    archives = []
    for n, reference in enumerate(references):
        service = {"image": reference, "command": ["sleep", "3600"]}
        archive = package_bytes(f"org.bench.bundle{n}", "1.0.0", services={"main": service})
        archives.append(archive)
        a.publish(archive)
    key, bundle = workdir / "key", workdir / "ten.bundle"
    subprocess.run(
        [BIN / "catalogctl", "bundle", "keygen", "-o", key], check=True, capture_output=True
    )
    names = [f"org.bench.bundle{n}" for n in range(PACKAGES)]
    export_s = cli("bundle", "export", *names, "-o", str(bundle), "--sign-key", str(key), api=a)
    size_mb = bundle.stat().st_size / 1e6
    import_s = cli("bundle", "import", str(bundle), "--trust", f"{key}.pub", api=b)

    # The peer: docker load of the same images, from the engine's own save, plus the uploads.
    saved = []
    for reference in references:
        buffer = io.BytesIO()
        for chunk in client.images.get(reference).save(named=True):
            buffer.write(chunk)
        saved.append(buffer.getvalue())
        client.images.remove(reference, force=True)
    started = time.perf_counter()
    for tarball in saved:
        client.images.load(tarball)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    for archive in archives:
        c.publish(archive)
    upload_s = time.perf_counter() - started
    with tarfile.open(bundle) as tar:
        members = len(tar.getmembers())

    peer_s = load_s + upload_s
    ratio = import_s / peer_s
    print(f"bundle of {PACKAGES} packages and {len(references)} images: {size_mb:.1f} MB, "
          f"{members} members")  # fmt: skip
    print(f"export {export_s:.2f} s ({size_mb / export_s:.1f} MB/s); import {import_s:.2f} s "
          f"({size_mb / import_s:.1f} MB/s)")  # fmt: skip
    print(f"peer: docker load {load_s:.2f} s + uploads {upload_s:.2f} s = {peer_s:.2f} s")
    ok = ratio <= TARGET_RATIO
    print(f"import / peer {ratio:.2f}x (target <= {TARGET_RATIO}x) {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
