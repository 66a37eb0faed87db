"""Benchmark (issue 17): a volume snapshot copies as fast as a plain `cp -a` in a container.

Measured in one run, on the same engine and disk:
1. Snapshot and restore of a 100 MB volume (--megabytes; 100 files of 1 MiB of random bytes)
   through the engine adapter's own operations (`DockerEngine.snapshot_volume`,
   `restore_volume`: a helper container of the test image mounting the source read-only),
   timed around the call, in MB/s.
2. The peer: `docker run` of the same image with both volumes mounted running
   `cp -a /from/. /to/` into a new empty volume, created, started, waited for and removed
   with the Docker SDK as the helper is. Target: the snapshot's median within 1.5x the peer's.
   The restore (which empties the volume first) is reported against the peer too.
3. With --upgrade (the default; --no-upgrade skips it): what a data-safe upgrade of one app
   adds over a plain one, end to end through the API and a real worker: the app's service
   mounts a volume of the same size; a version change (its old container stopped first, the
   volume snapshotted, then the new one started) against a parameter change of the same
   service (started beside the old one, no snapshot), each timed from the deployment's first
   event to its last. Reported only.

Each measurement is repeated (--repeats, default 5), the kinds interleaved; medians compared.
The page cache is not dropped (that needs the host's root): every copy reads data the kernel
has cached, the peer's as much as ours. Every volume and container of the run carries the run's
label and is removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402
from bench_deploy import cleanup  # noqa: E402
from stack import Stack, ended_at  # noqa: E402

from tests.integration.conftest import package_bytes  # noqa: E402
from workers.engine.docker import connect  # noqa: E402

IMAGE = "catalog-test/busybox:latest"
RUN_LABEL = "io.catalog.bench-run"
TARGET_RATIO = 1.5
MB = 1_000_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--upgrade", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    client = docker.from_env()
    run = uuid.uuid4().hex[:8]
    labels = {RUN_LABEL: run}
    try:
        ok = measure_copies(client, labels, args.repeats, args.megabytes)
        if args.upgrade:
            measure_upgrades(client, args.repeats, args.megabytes)
    finally:
        cleanup(client, [f"{RUN_LABEL}={run}"])
    return 0 if ok else 1


def fill(client: docker.DockerClient, volume: str, megabytes: int, labels: dict) -> None:
    client.volumes.create(volume, labels=labels)
    script = f"i=0; while [ $i -lt {megabytes} ]; do "
    script += "dd if=/dev/urandom of=/v/f$i bs=1048576 count=1 2>/dev/null; i=$((i+1)); done"
    client.containers.run(IMAGE, ["sh", "-c", script], remove=True, labels=labels,
                          volumes={volume: {"bind": "/v", "mode": "rw"}})  # fmt: skip


def plain_copy(client: docker.DockerClient, source: str, target: str, labels: dict) -> float:
    """The peer: `docker run` with both volumes, `cp -a`, removed; its wall time."""
    api = client.api
    client.volumes.create(target, labels=labels)
    host = api.create_host_config(binds={source: {"bind": "/from", "mode": "ro"},
                                         target: {"bind": "/to", "mode": "rw"}},
                                  network_mode="none")  # fmt: skip
    started = time.perf_counter()
    created = api.create_container(IMAGE, ["cp", "-a", "/from/.", "/to/"], labels=labels,
                                   host_config=host)  # fmt: skip
    try:
        api.start(created["Id"])
        code = api.wait(created["Id"], timeout=600)["StatusCode"]
    finally:
        api.remove_container(created["Id"], force=True)
    took = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"the plain copy exited with {code}")
    return took


def measure_copies(client: docker.DockerClient, labels: dict, repeats: int, size: int) -> bool:
    engine = connect()
    run = labels[RUN_LABEL]
    source, work = f"bench-snap-{run}-source", f"bench-snap-{run}-work"
    fill(client, source, size, labels)
    engine.snapshot_volume(source, work, labels, image=IMAGE, timeout=600)  # warm-up, a copy
    peer, snapshot, restore, reported = [], [], [], []
    for n in range(repeats):
        snap, plain = f"bench-snap-{run}-snap{n}", f"bench-snap-{run}-plain{n}"
        for kind in ("peer", "ours") if n % 2 == 0 else ("ours", "peer"):
            if kind == "peer":
                peer.append(plain_copy(client, source, plain, labels))
                continue
            started = time.perf_counter()
            copy = engine.snapshot_volume(source, snap, labels, image=IMAGE, timeout=600)
            snapshot.append(time.perf_counter() - started)
            reported.append(copy.size_bytes)
        started = time.perf_counter()
        engine.restore_volume(snap, work, labels, image=IMAGE, timeout=600)
        restore.append(time.perf_counter() - started)
        for name in (snap, plain):
            engine.remove_volume(name)
    engine.close()
    megabytes = statistics.median(reported) / MB
    p, s, r = (statistics.median(x) for x in (peer, snapshot, restore))
    print(f"{megabytes:.1f} MB volume ({size} files of 1 MiB; du -sb), medians of {repeats}:")
    print(f"  plain cp -a in one container (peer): {p:.2f} s, {megabytes / p:.0f} MB/s")
    print(f"  snapshot (engine adapter):           {s:.2f} s, {megabytes / s:.0f} MB/s")
    print(f"  restore (empties, then copies back): {r:.2f} s, {megabytes / r:.0f} MB/s "
          f"({r / p:.2f}x the peer)")  # fmt: skip
    ok = s <= TARGET_RATIO * p
    print(f"snapshot {s / p:.2f}x the plain copy (target <= {TARGET_RATIO}x) "
          f"{'ok' if ok else 'MISSED'}")  # fmt: skip
    return ok


def store(version: str, megabytes: int) -> bytes:
    """One service `db` whose volume is filled with `megabytes` MiB at its first start."""
    fill_script = (
        f"[ -e /data/filled ] || {{ i=0; while [ $i -lt {megabytes} ]; do "
        "dd if=/dev/urandom of=/data/f$i bs=1048576 count=1 2>/dev/null; i=$((i+1)); done; "
        "touch /data/filled; }; trap 'exit 0' TERM; while :; do sleep 0.2; done"
    )
    service = {
        "image": IMAGE,
        "command": ["sh", "-c", fill_script],
        "environment": {"VERSION": version, "BODY": "{{ params.body }}"},
        "volumes": [{"name": "data", "path": "/data"}],
        "resources": {"memory": "64m", "cpus": 0.5, "pids": 64},
    }
    parameters = {"type": "object", "properties": {"body": {"type": "string", "default": "a"}}}
    return package_bytes("org.bench.store", version, parameters=parameters,
                         services={"db": service})  # fmt: skip


def duration(revision: int, deployment: dict) -> float:
    if deployment["status"] != "succeeded":
        raise RuntimeError(f"revision {revision} {deployment['status']}: {deployment['error']}")
    started = datetime.fromisoformat(deployment["events"][0]["time"]).timestamp()
    return ended_at(revision, deployment) - started


def measure_upgrades(client: docker.DockerClient, repeats: int, size: int) -> None:
    versions = [f"1.{n}.0" for n in range(repeats + 1)]
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as workdir:
        stack = Stack(
            Path(workdir), database_prefix="bench_snapshot", queue_prefix="bench-snapshot",
            workers=1, concurrency=1,
            settings={"CATALOG_NETWORK_POOL": "10.216.0.0/16", "CATALOG_SNAPSHOT_IMAGE": IMAGE},
        )  # fmt: skip
        try:
            api = stack.start()
            for version in versions:
                api.publish(store(version, size))
            api.create_env("up")
            api.add_app("up", "s", "org.bench.store", versions[0])
            duration(1, api.wait("up", api.deploy("up"))[0])
            safe, plain = [], []
            for n in range(repeats):
                for kind in ("safe", "plain") if n % 2 == 0 else ("plain", "safe"):
                    change = (
                        {"version": versions[n + 1]}
                        if kind == "safe"
                        else {"parameters": {"body": f"{kind}{n}"}}
                    )
                    api.call("PATCH", "/environments/up/apps/s", json=change)
                    revision = api.deploy("up")
                    deployment, _, _ = api.wait("up", revision, every=0.2)
                    (safe if kind == "safe" else plain).append(duration(revision, deployment))
            snapshots = api.call("GET", "/environments/up/snapshots?limit=200")["items"]
        finally:
            stack.stop()
            cleanup(client, [f"io.catalog.env={env_id}" for env_id in stack.env_ids()])
            stack.drop()
    copies = [s["seconds"] for s in snapshots if s["status"] != "failed"]
    s, p = statistics.median(safe), statistics.median(plain)
    print(f"upgrade of one app with a {size} MiB volume, medians of {repeats}, first event to "
          f"last:")  # fmt: skip
    print(f"  plain (parameter change, started beside): {p:.2f} s")
    print(f"  data-safe (new version: stopped first, snapshotted): {s:.2f} s, "
          f"{s - p:+.2f} s (the copies themselves: median {statistics.median(copies):.2f} s "
          f"over {len(copies)} snapshots)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
