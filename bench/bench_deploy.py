"""Benchmark (issue #4): deployments on the real engine, broker and database, as ratios.

Targets, measured in one run:
1. 10 services without healthchecks (one app whose package has 10 busybox services), from
   `POST .../deployments` to the deployment `succeeded`: at most 1.25x the SDK floor
   (network + the same 10 containers, same create arguments, created and started with the
   Docker SDK in parallel threads), and faster than `docker-compose up -d` of the equivalent
   compose file.
2. A failed upgrade of a 10-service environment (one service moves to a version whose tcp
   healthcheck never passes, window 1.0 s) is fully rolled back - deployment `rolled_back`,
   environment `deploy_failed`, the new container gone - within 2 s after the window ends
   (window end = the engine's start event of the new container + the healthcheck window).
3. 20 environments x 3 containers deployed at once by 2 worker processes (two
   `catalogctl worker --concurrency 1`): all `succeeded`, no duplicates (checked on the
   engine by labels), total time at most 1.5x the SDK floor for the same 60 containers
   (20 networks, 60 containers created and started in parallel threads).

Environment networks, the catalog's and the SDK floor's alike, are /24s of the workers'
CATALOG_NETWORK_POOL (BENCH_NETWORK_POOL); a run the pool cannot hold is refused at its start.

Each measurement is repeated (--repeats, default 5, interleaved with its baselines) and the
medians are compared. The 10-service measurement starts with one untimed round of each kind:
a worker's first deployment opens its connections and loads code, and the first
`docker-compose` run loads its Python.

When a deployment ends is read from its own events: the worker writes "revision N is ready"
(or "... failed") in the commit that makes the deployment and the environment final,
stamped with the host's clock, which also times the POST. The benchmark polls the
deployment (every --poll seconds, default 0.5) only to learn that it ended; the time it saw
it is printed too. A poll is not free: one read of a deployment with its events costs this
API 8-10 ms of CPU, so polling every 0.1 s takes ~0.3 s of CPU during a 3 s deploy, on 2
CPUs that the engine keeps busy creating and starting containers - work the SDK baseline
does not share its CPUs with. A service without healthcheck is ready once it has stayed running
CATALOG_MIN_RUNNING_SECONDS; the workers get the value of --min-running (default: the
catalog's default), which is printed with the results.

The API (`catalogctl serve --workers 2`) runs on a free port against a fresh PostgreSQL
database (dropped at the end) and RabbitMQ with its own queue (deleted at the end). Every
container and network created is removed by label at the end, whatever happens.
Set CATALOG_BENCH_DATABASE_URL / CATALOG_BENCH_BROKER_URL to use other servers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402
import requests  # noqa: E402
import yaml  # noqa: E402
from stack import Api, Stack, ended_at  # noqa: E402

from catalog import config as catalog_config  # noqa: E402
from catalog.models import FINISHED  # noqa: E402
from packages.build import write_archive  # noqa: E402
from packages.container import ContainerTarget, container_params, readiness_timeout  # noqa: E402
from workers.engine.docker import create_args  # noqa: E402
from workers.engine.subnets import capacity, free_subnet, subnets_in_use  # noqa: E402

IMAGE = "catalog-test/busybox:latest"
BENCH_LABEL = "io.catalog.bench"  # on every SDK and compose object of this run: the run tag
RUN_LABEL = "io.catalog.bench-run"  # and the measurement it belongs to
ENV_LABEL = "io.catalog.env"  # on every catalog object: the environment id

TARGET_DEPLOY_RATIO = 1.25
TARGET_ROLLBACK_SECONDS = 2.0
TARGET_MANY_RATIO = 1.5
POLL_SECONDS = 0.5  # --poll
WORKERS = 2  # worker processes, each `catalogctl worker --concurrency 1`
ENVS, PER_ENV = 20, 3
# The workers' CATALOG_NETWORK_POOL: 256 /24 networks, away from the default pool and from
# the tracker benchmark's 10.213.0.0/16.
BENCH_NETWORK_POOL, BENCH_NETWORK_PREFIX = IPv4Network("10.212.0.0/16"), 24

SERVICE = {
    "image": IMAGE,
    "command": ["sh", "-c", "exec sleep 3600"],
    "resources": {"memory": "32m", "cpus": 0.25, "pids": 64},
}
# v1.1.0 of the upgrade package: s0 gets a tcp check nothing answers; window 0.5 + 0.5 = 1 s.
FAILING_CHECK = {"tcp": {"port": 7}, "interval": "500ms", "timeout": "500ms", "retries": 1}


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


# -- engine helpers --------------------------------------------------------------------------


def remove_labelled(client: docker.DockerClient, label: str) -> None:
    """Every container, then network, then volume carrying `label` (key=value)."""
    selector = {"label": label}
    for summary in client.api.containers(all=True, filters=selector):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.api.remove_container(summary["Id"], force=True, v=True)
    for network in client.networks.list(filters=selector):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            network.remove()
    for volume in client.volumes.list(filters=selector):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            volume.remove(force=True)


def labels(tag: str, run: str) -> dict[str, str]:
    return {BENCH_LABEL: tag, RUN_LABEL: run}


def cleanup(client: docker.DockerClient, selectors: list[str], patience: float = 120) -> None:
    """remove_labelled for each selector; waits for an engine that is restarting."""
    deadline = time.monotonic() + patience
    while True:
        try:
            for selector in selectors:
                remove_labelled(client, selector)
            return
        except (requests.ConnectionError, docker.errors.DockerException):
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def sdk_params(client, marks: dict, network: str, name: str, hostname: str) -> dict:
    """Low-level create arguments from the catalog's own container policy: same limits."""
    target = ContainerTarget(
        name=name, hostname=hostname, image=IMAGE, network=network, labels=marks
    )
    return create_args(client.api, container_params(SERVICE, target))


def free_subnets(
    client, count: int, pool: IPv4Network = BENCH_NETWORK_POOL, prefix: int = BENCH_NETWORK_PREFIX
) -> list[IPv4Network]:
    """Up to `count` /`prefix` subnets of `pool` no network on the engine uses, lowest first."""
    used = subnets_in_use(client.api.networks())
    found: list[IPv4Network] = []
    while len(found) < count:
        subnet = free_subnet(pool, prefix, used + found)
        if subnet is None:
            break
        found.append(subnet)
    return found


def sdk_floor(client, marks: dict, layout: dict[str, list[str]]) -> float:
    """Seconds to create the networks, then create and start every container, all in threads.

    `layout`: network name -> hostnames of its containers; `marks`: labels for all of them.
    Each network gets a subnet of the pool, as the catalog's do (chosen before the clock).
    """
    jobs = [
        sdk_params(client, marks, net, f"{net}-{host}", host)
        for net, hosts in layout.items()
        for host in hosts
    ]
    subnets = dict(zip(layout, free_subnets(client, len(layout)), strict=True))

    def create_network(name: str) -> None:
        pool = docker.types.IPAMPool(subnet=str(subnets[name]))
        ipam = docker.types.IPAMConfig(pool_configs=[pool])
        client.api.create_network(name, driver="bridge", labels=marks, ipam=ipam)

    def create_and_start(args: dict) -> None:
        client.api.start(client.api.create_container(**args)["Id"])

    started = time.perf_counter()
    with ThreadPoolExecutor(len(layout)) as pool:
        list(pool.map(create_network, layout))
    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(create_and_start, jobs))
    took = time.perf_counter() - started
    running = client.api.containers(filters={"label": f"{RUN_LABEL}={marks[RUN_LABEL]}"})
    if len(running) != len(jobs):
        raise RuntimeError(f"sdk floor: {len(running)} of {len(jobs)} containers running")
    return took


def compose_file(marks: dict, services: int) -> str:
    """The compose equivalent of the 10-service package, with the same create arguments."""
    target = ContainerTarget(name="x", hostname="x", image=IMAGE, network="x")
    params = container_params(SERVICE, target)
    log_config = params["log_config"]
    service = {
        "image": IMAGE,
        "command": SERVICE["command"],
        "mem_limit": params["mem_limit"],
        "memswap_limit": params["memswap_limit"],
        "cpus": params["nano_cpus"] / 1e9,
        "pids_limit": params["pids_limit"],
        "cap_drop": params["cap_drop"],
        "cap_add": params["cap_add"],
        "security_opt": params["security_opt"],
        "logging": {"driver": log_config["type"], "options": log_config["config"]},
        "restart": "no",
        "labels": marks,
        "networks": ["net"],
    }
    doc = {
        "version": "2.4",
        "services": {f"s{i}": {**service, "hostname": f"s{i}"} for i in range(services)},
        "networks": {"net": {"labels": marks}},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def compose_up(client, workdir: Path, marks: dict, services: int) -> float:
    run = marks[RUN_LABEL]
    path = workdir / f"compose-{run}.yaml"
    path.write_text(compose_file(marks, services))
    argv = ["docker-compose", "-p", f"bench{run}", "-f", str(path), "up", "-d"]
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"docker-compose failed: {result.stderr[-2000:]}")
    running = client.api.containers(filters={"label": f"{RUN_LABEL}={run}"})
    if len(running) != services:
        raise RuntimeError(f"docker-compose: {len(running)} of {services} containers running")
    return took


# -- packages --------------------------------------------------------------------------------


def package(workdir: Path, name: str, version: str, services: dict[str, dict]) -> bytes:
    directory = workdir / f"{name}-{version}"
    directory.mkdir()
    manifest = {
        "format": "catalog/v1",
        "name": name,
        "version": version,
        "type": "application",
        "title": "Bench",
        "description": "Busybox services that sleep",
        "services": services,
    }
    (directory / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    buf = io.BytesIO()
    write_archive(directory, buf)
    return buf.getvalue()


def sleepers(count: int) -> dict[str, dict]:
    return {f"s{i}": dict(SERVICE) for i in range(count)}


# -- scenarios -------------------------------------------------------------------------------


def catalog_deploy(api: Api, client, name: str, package_name: str, containers: int):
    """Seconds from the POST to the deployment's end, and to when the poll saw it."""
    env_id = api.create_env(name)
    api.add_app(name, "app", package_name, "1.0.0")
    posted = time.time()
    revision = api.deploy(name)
    deployment, ended, seen = api.wait(name, revision, every=POLL_SECONDS)
    if deployment["status"] != "succeeded":
        raise RuntimeError(f"{name}: {deployment['status']}: {deployment['error']}")
    running = client.api.containers(filters={"label": f"{ENV_LABEL}={env_id}"})
    if len(running) != containers or api.environment(name)["status"] != "ready":
        raise RuntimeError(f"{name}: {len(running)} of {containers} containers running")
    return ended - posted, seen - posted


def bench_deploy10(api, client, workdir: Path, tag: str, repeats: int) -> bool:
    api.publish(package(workdir, "org.bench.ten", "1.0.0", sleepers(10)))
    catalog, seen, floor, compose = [], [], [], []
    for rep in range(-1, repeats):  # round -1: the untimed warm-up
        order = ["catalog", "sdk", "compose"]
        order = order[rep % 3 :] + order[: rep % 3]  # rotate, so no kind always goes first
        for kind in order:
            run = f"{tag}-{kind}-{rep}"
            if kind == "catalog":
                name = f"ten-{rep}" if rep >= 0 else "ten-warm-up"
                took, saw = catalog_deploy(api, client, name, "org.bench.ten", 10)
                if rep >= 0:
                    catalog.append(took)
                    seen.append(saw)
                api.delete_env(name)
                continue
            try:
                if kind == "sdk":
                    layout = {f"bench-{run}": [f"s{i}" for i in range(10)]}
                    took = sdk_floor(client, labels(tag, run), layout)
                else:
                    took = compose_up(client, workdir, labels(tag, run), 10)
                if rep >= 0:
                    (floor if kind == "sdk" else compose).append(took)
            finally:
                remove_labelled(client, f"{RUN_LABEL}={run}")
    ratio = median(catalog) / median(floor)
    faster = median(catalog) < median(compose)
    print(f"  catalog s: {fmt(catalog)} (seen by the poll: {fmt(seen)})")
    print(f"  sdk floor s: {fmt(floor)}; docker-compose s: {fmt(compose)}")
    print(
        f"deploy 10 services: catalog {median(catalog):.2f} s, sdk floor {median(floor):.2f} s, "
        f"ratio {ratio:.2f} (target <= {TARGET_DEPLOY_RATIO}); docker-compose "
        f"{median(compose):.2f} s (catalog faster: {'yes' if faster else 'no'})"
    )
    return ratio <= TARGET_DEPLOY_RATIO and faster


class EngineEvents:
    """Container events of one environment, with the engine's timestamps (time.time scale)."""

    def __init__(self, client, env_id: str) -> None:
        self.stream = client.events(
            decode=True,
            since=int(time.time()) - 1,
            filters={"type": "container", "label": f"{ENV_LABEL}={env_id}"},
        )
        self.items: list[dict] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error when closed
            for event in self.stream:
                with self.lock:
                    self.items.append(event)

    def times(self, action: str) -> dict[str, float]:
        """Container id -> time of its first `action` event."""
        found: dict[str, float] = {}
        with self.lock:
            for event in self.items:
                if event.get("Action") == action:
                    found.setdefault(event["id"], event["timeNano"] / 1e9)
        return found

    def close(self) -> None:
        self.stream.close()


def container_ids(client, env_id: str) -> list[str]:
    return sorted(
        c["Id"] for c in client.api.containers(filters={"label": f"{ENV_LABEL}={env_id}"})
    )


def bench_rollback(api, client, workdir: Path, repeats: int) -> bool:
    name = "upgrade"
    api.publish(package(workdir, "org.bench.upgrade", "1.0.0", sleepers(10)))
    failing = sleepers(10)
    failing["s0"] = {**failing["s0"], "healthcheck": FAILING_CHECK}
    api.publish(package(workdir, "org.bench.upgrade", "1.1.0", failing))
    window = readiness_timeout(failing["s0"])
    env_id = api.create_env(name)
    api.add_app(name, "app", "org.bench.upgrade", "1.0.0")
    deployment, _, _ = api.wait(name, api.deploy(name), every=POLL_SECONDS)
    if deployment["status"] != "succeeded":
        raise RuntimeError(f"the first revision failed: {deployment['error']}")
    old = container_ids(client, env_id)
    api.call("PATCH", f"/environments/{name}/apps/app", json={"version": "1.1.0"})
    latencies: list[float] = []
    for _ in range(repeats):  # the same upgrade again: each a new revision over revision 1
        events = EngineEvents(client, env_id)
        try:
            revision = api.deploy(name)
            deployment, ended, _ = api.wait(name, revision, every=POLL_SECONDS)
            if deployment["status"] != "rolled_back":
                raise RuntimeError(f"upgrade: {deployment['status']}, expected rolled_back")
            if api.environment(name)["status"] != "deploy_failed":
                raise RuntimeError("upgrade: the environment is not deploy_failed")
            deadline = time.monotonic() + 30
            while True:  # the engine's events for the new container: started, destroyed
                started = {k: v for k, v in events.times("start").items() if k not in old}
                destroyed = events.times("destroy")
                if started and started.keys() <= destroyed.keys():
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("upgrade: the new container was not removed")
                time.sleep(0.05)
        finally:
            events.close()
        window_end = max(started.values()) + window
        gone = max(destroyed[k] for k in started)
        latencies.append(max(ended, gone) - window_end)
        if container_ids(client, env_id) != old:
            raise RuntimeError("upgrade: the old containers did not all keep running")
    api.delete_env(name)
    ok = median(latencies) <= TARGET_ROLLBACK_SECONDS
    print(f"  rolled back after the window ended, s: {fmt(latencies)} (window {window:.1f} s)")
    print(
        f"failed upgrade of 10 services: rolled back {median(latencies):.2f} s after the "
        f"healthcheck window ended (target <= {TARGET_ROLLBACK_SECONDS:.1f} s): "
        f"{'yes' if ok else 'no'}"
    )
    return ok


def catalog_many(api, client, rep: int) -> tuple[float, float]:
    """20 environments deployed at once: seconds to the last one's end, and to seeing it."""
    names = [f"many-{rep}-{i:02d}" for i in range(ENVS)]
    ids = {}
    for name in names:
        ids[name] = api.create_env(name)
        api.add_app(name, "app", "org.bench.three", "1.0.0")
    posted = time.time()
    with ThreadPoolExecutor(ENVS) as pool:
        revisions = dict(zip(names, pool.map(api.deploy, names), strict=True))
    pending = list(names)
    results: dict[str, dict] = {}
    ends: list[float] = []
    deadline = time.monotonic() + 300
    while pending:  # one request per tick, round robin over the unfinished ones
        name = pending.pop(0)
        deployment = api.deployment(name, revisions[name])
        if deployment["status"] in FINISHED:
            results[name] = deployment
            ends.append(ended_at(revisions[name], deployment))
        else:
            pending.append(name)
            time.sleep(POLL_SECONDS / 2)
        if time.monotonic() > deadline:
            raise RuntimeError(f"many: {len(pending)} deployments unfinished after 300 s")
    seen = time.time()
    failed = {
        n: (d["status"], d["error"]) for n, d in results.items() if d["status"] != "succeeded"
    }
    if failed:
        raise RuntimeError(f"many: not all succeeded: {failed}")
    total = 0
    for name in names:  # exactly one running container per slot, on the engine
        found = client.api.containers(all=True, filters={"label": f"{ENV_LABEL}={ids[name]}"})
        slots = {
            (c["Labels"]["io.catalog.app"], c["Labels"]["io.catalog.service"],
             c["Labels"]["io.catalog.replica"])
            for c in found
        }  # fmt: skip
        if len(found) != PER_ENV or len(slots) != PER_ENV:
            raise RuntimeError(f"many: {name} has {len(found)} containers, {len(slots)} slots")
        if any(c["State"] != "running" for c in found):
            raise RuntimeError(f"many: {name} has containers not running")
        if api.environment(name)["status"] != "ready":
            raise RuntimeError(f"many: {name} is not ready")
        total += len(found)
    if total != ENVS * PER_ENV:
        raise RuntimeError(f"many: {total} containers")
    for name in names:
        api.call("DELETE", f"/environments/{name}")
    for name in names:
        api.delete_env(name, request=False)
    return max(ends) - posted, seen - posted


class NotMeasurable(RuntimeError):
    """The machine cannot run this measurement as it stands (not a fault of the catalog)."""


def check_address_pools(client, needed: int) -> None:
    """Refuse early when the bench's network pool has no room for `needed` more networks.

    Its capacity minus the subnets that networks on the engine (other runs' leaked ones
    too) already use.
    """
    size = capacity(BENCH_NETWORK_POOL, BENCH_NETWORK_PREFIX)
    free = len(free_subnets(client, size))
    if free < needed:
        raise NotMeasurable(
            f"the network pool {BENCH_NETWORK_POOL} holds {size} networks of "
            f"/{BENCH_NETWORK_PREFIX}, {size - free} of them taken by networks on the engine: "
            f"{free} free and this benchmark needs {needed}; remove leaked networks (e.g. "
            "empty `cat-*` networks of finished runs) and run it again"
        )


def bench_many(api, client, workdir: Path, tag: str, repeats: int) -> bool:
    check_address_pools(client, ENVS)
    api.publish(package(workdir, "org.bench.three", "1.0.0", sleepers(PER_ENV)))
    catalog, seen, floor = [], [], []
    for rep in range(repeats):
        order = ["catalog", "sdk"] if rep % 2 == 0 else ["sdk", "catalog"]
        for kind in order:
            if kind == "catalog":
                took, saw = catalog_many(api, client, rep)
                catalog.append(took)
                seen.append(saw)
                continue
            run = f"{tag}-many-{rep}"
            layout = {
                f"bench-{run}-{e:02d}": [f"s{i}" for i in range(PER_ENV)] for e in range(ENVS)
            }
            try:
                floor.append(sdk_floor(client, labels(tag, run), layout))
            finally:
                remove_labelled(client, f"{RUN_LABEL}={run}")
    ratio = median(catalog) / median(floor)
    print(f"  catalog s: {fmt(catalog)} (seen by the poll: {fmt(seen)}); sdk floor s: {fmt(floor)}")
    print(
        f"deploy {ENVS} environments x {PER_ENV} containers with {WORKERS} workers: catalog "
        f"{median(catalog):.2f} s, sdk floor {median(floor):.2f} s, ratio {ratio:.2f} "
        f"(target <= {TARGET_MANY_RATIO}); all ready, no duplicates"
    )
    return ratio <= TARGET_MANY_RATIO


def main() -> int:
    global POLL_SECONDS
    default_min = catalog_config.defaults().min_running_seconds
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each measurement")
    parser.add_argument(
        "--min-running",
        type=float,
        default=default_min,
        help=f"CATALOG_MIN_RUNNING_SECONDS for the workers (default: the catalog's, {default_min})",
    )
    parser.add_argument(
        "--poll", type=float, default=POLL_SECONDS, help="seconds between polls of a deployment"
    )
    parser.add_argument("--only", choices=("deploy10", "rollback", "many"), action="append")
    args = parser.parse_args()
    POLL_SECONDS = args.poll
    only = dict.fromkeys(args.only or ("deploy10", "rollback", "many"))
    client = docker.from_env()
    client.images.get(IMAGE)
    tag = uuid.uuid4().hex[:8]
    results: dict[str, bool] = {}
    api: Api | None = None
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        workdir = Path(tmp)
        stack = Stack(
            workdir,
            database_prefix="catalog_bench_deploy",
            queue_prefix="catalog-bench",
            workers=WORKERS,
            concurrency=1,
            settings={
                "CATALOG_HOST_PORT_RANGE": "33000-33999",
                "CATALOG_NETWORK_POOL": str(BENCH_NETWORK_POOL),
                "CATALOG_NETWORK_PREFIX": str(BENCH_NETWORK_PREFIX),
                "CATALOG_MIN_RUNNING_SECONDS": str(args.min_running),
            },
        )
        try:
            api = stack.start()
            print(
                f"settings: min running {args.min_running} s (catalog default {default_min} s); "
                f"{WORKERS} x `catalogctl worker --concurrency 1`; DEPLOY_PARALLELISM "
                f"{catalog_config.load().deploy_parallelism}; API `serve --workers 2`; "
                f"network pool {BENCH_NETWORK_POOL} (/{BENCH_NETWORK_PREFIX}); "
                f"{args.repeats} repeats, medians; polls every {args.poll} s; "
                f"load {os.getloadavg()[0]:.1f} "
                f"on {os.cpu_count()} CPUs",
                flush=True,
            )
            scenarios = {
                "deploy10": lambda: bench_deploy10(api, client, workdir, tag, args.repeats),
                "rollback": lambda: bench_rollback(api, client, workdir, args.repeats),
                "many": lambda: bench_many(api, client, workdir, tag, args.repeats),
            }
            for name in only:
                try:
                    results[name] = scenarios[name]()
                except Exception as exc:  # a scenario that cannot be measured misses its target
                    results[name] = False
                    print(f"{name}: not measured: {type(exc).__name__}: {exc}", flush=True)
                    if not isinstance(exc, NotMeasurable):
                        for process in stack.processes:  # what the API and workers said
                            tail = f"-- {process.log_path.name} (tail)\n{process.tail()}"
                            print(tail, file=sys.stderr)
        finally:
            stack.stop()
            stack.drop()
            labels = [f"{ENV_LABEL}={env_id}" for env_id in (api.env_ids if api else ())]
            cleanup(client, [*labels, f"{BENCH_LABEL}={tag}"])
            client.close()
    missed = [name for name, ok in results.items() if not ok]
    if missed:
        print(f"missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
