"""Benchmark (issue #5): the tracker with 200 managed containers on the real engine.

The containers: 20 environments x 10 busybox services (`sh -c 'exec sleep 3600'`, 32 MiB,
0.25 CPU, 64 pids), deployed through the real API (`catalogctl serve`) and real workers
(`catalogctl worker`, the first one with `--beat`, i.e. the periodic resync that republishes
lost deployments) on a fresh PostgreSQL database and a queue of this run's own. Only the
environments' networks are created by the benchmark beforehand (`cat-<env id>`, which the
deploy reuses), each with an explicit /24 out of 10.213.0.0/16: the engine's default address
pools hold ~31 bridge networks for everybody sharing it. Then `catalogctl tracker` runs as a
real process with its default settings (relist every TRACKER_RELIST_SECONDS = 5 s).

Targets, measured in one run:
1. Idle CPU: once the tracker has settled (its first relist has inspected every container),
   utime+stime from /proc/<pid>/stat of the tracker over --idle seconds (default 30) with
   nothing happening, as % of one core: < 3 %. The tracker holds the resync of issue #5 (the
   relist and the repairs); the workers' process group (with beat's republish task) is
   measured over the same window and the target applies to the sum as well.
2. A full relist pass (Tracker.relist, in this process, against the same database and
   engine, after the tracker process is stopped so that the two do not compete): best and
   median of --relists warm passes (the first, cold one - revision specs read - is shown
   apart): median < 1 s.
3. `docker kill` of one running container, then GET /v1/environments/{env} polled every
   20 ms until its app shows a not-running status (`failed` etc.): median of --kills kills
   (each in another environment, waiting for the tracker to restart it in between) < 2 s.

Every container and network of the run's environments is removed at the end (by the
environments' label, the ids read from this run's database), the database dropped and the
queue deleted, whatever happens; the whole run is bounded by --timeout.
Set CATALOG_BENCH_DATABASE_URL / CATALOG_BENCH_BROKER_URL to use other servers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import docker  # noqa: E402
from bench_deploy import (  # noqa: E402
    BENCH_LABEL,
    ENV_LABEL,
    IMAGE,
    free_subnets,
    package,
    remove_labelled,
    sleepers,
)
from sqlalchemy import func, select  # noqa: E402
from stack import Api, Stack  # noqa: E402

from catalog import config as catalog_config  # noqa: E402
from tests.polling import eventually  # noqa: E402

# Environment networks: /24s of a pool away from the default pools and bench_deploy's.
NETWORK_POOL, NETWORK_PREFIX = IPv4Network("10.213.0.0/16"), 24

TARGET_CPU_PERCENT = 3.0
TARGET_RELIST_SECONDS = 1.0
TARGET_KILL_SECONDS = 2.0
POLL_SECONDS = 0.02
NOT_RUNNING = ("failed", "stopped", "crashloop", "unhealthy")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Timeout(Exception):
    pass


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


# -- CPU time from /proc ---------------------------------------------------------------------


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process (all its threads), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def group_ticks(pgid: int) -> int:
    """utime + stime of every live process of a process group."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5 of proc(5)
                total += int(fields[11]) + int(fields[12])
    return total


class CatalogEvents:
    """Counts the engine's events for catalog-labelled containers (of every run on the engine)."""

    def __init__(self, client) -> None:
        self.count = 0
        self.stream = client.events(
            decode=True, filters={"type": "container", "label": [ENV_LABEL]}
        )
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            for _event in self.stream:
                self.count += 1

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stream.close()


# -- deploying 200 containers ------------------------------------------------------------------


def deploy_all(api: Api, client, workdir: Path, tag: str, envs: int, per_env: int) -> dict:
    """name -> env id of `envs` environments of `per_env` running containers each."""
    api.publish(package(workdir, "org.bench.sleepers", "1.0.0", sleepers(per_env)))
    names = [f"track-{i:02d}" for i in range(envs)]
    subnets = free_subnets(client, envs, NETWORK_POOL, NETWORK_PREFIX)
    if len(subnets) < envs:
        raise RuntimeError(f"only {len(subnets)} free /{NETWORK_PREFIX} in {NETWORK_POOL}")
    ids: dict[str, str] = {}
    for name, subnet in zip(names, subnets, strict=True):
        ids[name] = env_id = api.create_env(name)
        pool = docker.types.IPAMPool(subnet=str(subnet))
        client.api.create_network(
            f"cat-{env_id}",
            driver="bridge",
            labels={ENV_LABEL: env_id, BENCH_LABEL: tag},
            ipam=docker.types.IPAMConfig(pool_configs=[pool]),
        )
        api.add_app(name, "app", "org.bench.sleepers", "1.0.0")
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        revisions = dict(zip(names, pool.map(api.deploy, names), strict=True))
        results = dict(
            zip(names, pool.map(lambda n: api.wait(n, revisions[n], 900)[0], names), strict=True)
        )
    failed = {
        n: (d["status"], d.get("error")) for n, d in results.items() if d["status"] != "succeeded"
    }
    if failed:
        raise RuntimeError(f"deployments failed: {failed}")
    running = 0
    for env_id in ids.values():
        found = client.api.containers(filters={"label": f"{ENV_LABEL}={env_id}"})
        if len(found) != per_env:
            raise RuntimeError(f"environment {env_id}: {len(found)} of {per_env} running")
        running += len(found)
    print(
        f"  deployed {envs} environments x {per_env} = {running} running containers through "
        f"the API and workers in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return ids


# -- measurements ----------------------------------------------------------------------------


def settle_tracker(stack: Stack, sessions, relist_seconds: float) -> None:
    """Wait until the tracker has inspected every container and every environment is ready."""
    from catalog.models import ContainerRecord, Environment

    def settled() -> bool:
        with sessions() as session:
            unseen = session.scalar(
                select(func.count())
                .select_from(ContainerRecord)
                .where(ContainerRecord.started_at.is_(None))
            )
            not_ready = session.scalar(
                select(func.count()).select_from(Environment).where(Environment.status != "ready")
            )
        if not stack.tracker.alive():
            raise RuntimeError(f"the tracker exited:\n{stack.tracker.tail()}")
        return unseen == 0 and not_ready == 0

    eventually(settled, 120, "the tracker inspects every container", every=0.2)
    time.sleep(relist_seconds + 1)  # the pass that found them all settled has finished too


def measure_cpu(stack: Stack, client, seconds: float) -> tuple[float, float, int]:
    """% of one core used by the tracker and by the workers' process group over `seconds`."""
    tracker = stack.tracker.proc.pid
    workers = [p.proc.pid for p in stack.worker_processes]
    events = CatalogEvents(client)
    try:
        t0, w0, wall0 = cpu_ticks(tracker), sum(map(group_ticks, workers)), time.monotonic()
        time.sleep(seconds)
        t1, w1, wall1 = cpu_ticks(tracker), sum(map(group_ticks, workers)), time.monotonic()
    finally:
        events.close()
    wall = wall1 - wall0
    return (
        100 * (t1 - t0) / CLOCK_TICKS / wall,
        100 * (w1 - w0) / CLOCK_TICKS / wall,
        events.count,
    )


def measure_relist(rt, repeats: int) -> tuple[float, list[float], list[float]]:
    """Seconds of a cold relist, then wall and CPU seconds of `repeats` warm ones."""
    from workers.tracker.loop import Tracker

    tracker = Tracker(rt, rt.settings)
    started = time.perf_counter()
    tracker.relist()
    cold = time.perf_counter() - started
    wall, cpu = [], []
    for _ in range(repeats):
        started, cpu0 = time.perf_counter(), time.process_time()
        tracker.relist()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu0)
    tracker._pool.shutdown(wait=False, cancel_futures=True)
    return cold, wall, cpu


def app_status(api: Api, name: str) -> tuple[str, str]:
    environment = api.environment(name)
    return environment["status"], next(
        a["status"] for a in environment["apps"] if a["name"] == "app"
    )


def measure_kills(api: Api, client, ids: dict[str, str], kills: int) -> tuple[list, list]:
    """Seconds from `docker kill` to a not-running app status, and to running again."""
    seen, back = [], []
    names = list(ids)
    for k in range(kills):
        name = names[(k * 3) % len(names)]
        env_id = ids[name]
        victim = client.api.containers(filters={"label": f"{ENV_LABEL}={env_id}"})[k % 3]["Id"]
        before = app_status(api, name)
        if before[1] not in ("running", "healthy") or before[0] != "ready":
            raise RuntimeError(f"{name} is not running before the kill: {before}")
        started = time.perf_counter()
        client.api.kill(victim)
        deadline = started + 30
        while True:
            status = app_status(api, name)
            if status[1] in NOT_RUNNING:
                seen.append(time.perf_counter() - started)
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"kill {k}: {name} still shows {status} after 30 s")
            time.sleep(POLL_SECONDS)
        while True:  # the tracker restarts it after its backoff
            status = app_status(api, name)
            if status == ("ready", "running"):
                back.append(time.perf_counter() - started)
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"kill {k}: {name} not running again after 30 s: {status}")
            time.sleep(0.1)
        state = client.api.inspect_container(victim)["State"]
        if not state["Running"]:
            raise RuntimeError(f"kill {k}: the killed container is not running again")
        print(
            f"  kill {k} ({name}): not running in the API after {seen[-1]:.3f} s, "
            f"running again after {back[-1]:.2f} s",
            flush=True,
        )
    return seen, back


def runtime_for(stack: Stack):
    from catalog.db import make_engine, make_sessionmaker
    from catalog.services.blobs import BlobStore
    from workers.engine.docker import connect
    from workers.runtime import Runtime

    settings = catalog_config.load(stack.env)
    sessions = make_sessionmaker(make_engine(settings.database_url, pool_size=4))
    return Runtime(
        sessions=sessions,
        engine=connect(settings.docker_url),
        blob_path=BlobStore(settings.blob_dir).path_for,
        settings=settings,
        owner=f"bench:{os.getpid()}",
    )


# -- main ------------------------------------------------------------------------------------


def _alarm(_signum, _frame):
    raise Timeout("the benchmark ran out of time (--timeout)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=20)
    parser.add_argument("--per-env", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2 each)")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measured")
    parser.add_argument("--relists", type=int, default=7, help="warm relist passes timed")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--timeout", type=int, default=1500, help="bound of the whole run, s")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(args.timeout)
    client = docker.from_env(timeout=120)
    client.images.get(IMAGE)
    tag = uuid.uuid4().hex[:8]
    defaults = catalog_config.defaults()
    relist_seconds = defaults.tracker_relist_seconds
    results: dict[str, bool] = {}
    rt = None
    with tempfile.TemporaryDirectory(prefix="bench-tracker-") as tmp:
        stack = Stack(
            Path(tmp),
            database_prefix="catalog_bench_tracker",
            queue_prefix="catalog-bench-tracker",
            workers=args.workers,
            concurrency=2,
            beat=True,
            settings={
                "CATALOG_HOST_PORT_RANGE": "34000-34999",
                "CATALOG_MAX_ACTIVE_DEPLOYS": "100",
            },
            bootstrap_seconds=120,
            start_seconds=90,
        )
        api: Api | None = None
        try:
            api = stack.start()
            print(
                f"settings: {args.envs} x {args.per_env} containers; tracker defaults (relist "
                f"every {relist_seconds:g} s, queue {defaults.tracker_queue_size}, restart "
                f"backoff {defaults.restart_backoff_seconds:g} s); {args.workers} workers "
                f"(beat in the first, resync every {defaults.resync_seconds:g} s); "
                f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
                flush=True,
            )
            ids = deploy_all(api, client, Path(tmp), tag, args.envs, args.per_env)
            stack.start_tracker()
            rt = runtime_for(stack)
            started = time.perf_counter()
            settle_tracker(stack, rt.sessions, relist_seconds)
            print(
                f"  tracker settled (every record inspected, every environment ready) in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )

            tracker_cpu, workers_cpu, events = measure_cpu(stack, client, args.idle)
            total = tracker_cpu + workers_cpu
            results["cpu"] = total < TARGET_CPU_PERCENT
            print(
                f"  over {args.idle:g} s idle: {events} engine event(s) of catalog-labelled "
                f"containers (any run on this engine) reached the tracker's filter"
            )
            print(
                f"idle CPU with {args.envs * args.per_env} containers: tracker "
                f"{tracker_cpu:.2f} % of one core, workers + beat resync {workers_cpu:.2f} %, "
                f"together {total:.2f} % (target < {TARGET_CPU_PERCENT:g} %): "
                f"{'yes' if results['cpu'] else 'no'}",
                flush=True,
            )

            seen, back = measure_kills(api, client, ids, args.kills)
            results["kill"] = statistics.median(seen) < TARGET_KILL_SECONDS
            print(
                f"killed container not running in the API: median {statistics.median(seen):.3f}"
                f" s, max {max(seen):.3f} s over {len(seen)} kills (target < "
                f"{TARGET_KILL_SECONDS:g} s): {'yes' if results['kill'] else 'no'}; running "
                f"again after {statistics.median(back):.2f} s (median)",
                flush=True,
            )

            stack.tracker.stop()  # the relist alone, in this process
            cold, wall, cpu = measure_relist(rt, args.relists)
            best, middle = min(wall), statistics.median(wall)
            results["relist"] = middle < TARGET_RELIST_SECONDS
            print(
                f"  relist passes s: {fmt(wall)} (CPU s: {fmt(cpu)}); cold first pass {cold:.3f} s"
            )
            print(
                f"full relist of {args.envs} environments / {args.envs * args.per_env} "
                f"containers: best {best:.3f} s, median {middle:.3f} s (target < "
                f"{TARGET_RELIST_SECONDS:g} s): {'yes' if results['relist'] else 'no'}",
                flush=True,
            )
        except BaseException:
            for process in stack.processes:
                print(f"-- {process.log_path.name} (tail)\n{process.tail()}", file=sys.stderr)
            raise
        finally:
            signal.alarm(0)
            stack.stop()
            env_ids = set(stack.env_ids()) | set(api.env_ids if api else ())
            for env_id in env_ids:
                remove_labelled(client, f"{ENV_LABEL}={env_id}")
            remove_labelled(client, f"{BENCH_LABEL}={tag}")
            if rt is not None:
                rt.engine.close()
                with contextlib.suppress(Exception):
                    rt.sessions.kw["bind"].dispose()
            stack.drop()
            client.close()
            print(f"load after the run: {os.getloadavg()}", flush=True)
    missed = [name for name, ok in results.items() if not ok]
    if missed:
        print(f"missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
