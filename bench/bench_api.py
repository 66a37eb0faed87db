"""Benchmark (issue #3): the real API server under load, over PostgreSQL.

Targets, with 10,000 packages x 3 versions (and at every size `--packages` lists):
- searches and paginated listings: p95 under 50 ms at 8 concurrent clients;
- uploads of 20 KB packages: at least 50 per second (4 concurrent clients);
Each client is a process of its own, with one keep-alive connection, as separate client
programs would be.
- the API process (gunicorn master + workers, summed RSS) stays under 250 MB during the load.

A fresh database is created, migrated, seeded with bulk INSERTs of rows shaped exactly as
`catalog.services.packages` writes them, served by `catalogctl serve` in a subprocess, and
dropped at the end: once per size of `--packages` (`10000,100000` prints how each kind of
read grows with the catalog: p95 at the largest size within 1.3x of that at the smallest),
then the embedded profile's SQLite at `--sqlite-packages`, reads only. Set
CATALOG_BENCH_DATABASE_URL to the maintenance database to use (default:
postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import io
import json
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from catalog.auth import authenticate  # noqa: E402
from catalog.db import make_engine, make_sessionmaker  # noqa: E402
from catalog.migrate import upgrade  # noqa: E402
from catalog.models import Package, PackageVersion, package_categories  # noqa: E402
from catalog.models.common import new_id  # noqa: E402
from catalog.secretbox import new_key  # noqa: E402
from catalog.services.categories import create_category  # noqa: E402
from catalog.services.package_search import index_packages, short_name  # noqa: E402
from catalog.services.tenants import bootstrap_admin, create_tenant, issue_token  # noqa: E402

MAINTENANCE_URL = os.environ.get(
    "CATALOG_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PACKAGES = 10_000  # the default size
VERSIONS = 3
TENANTS = 8  # besides the admin tenant
CATEGORIES = 12
TARGET_P95_MS = 50.0
TARGET_UPLOADS_PER_S = 50.0
TARGET_RSS_MB = 250.0
TARGET_GROWTH = 1.3  # p95 at the largest size over p95 at the smallest, for every kind
UPLOAD_FILE_BYTES = 20 * 1024
SAMPLE_SECONDS = 0.2
OTHERS_WARNING = 0.10  # share of the machine used by unrelated processes worth a warning
SEED = 3  # the data set is the same on every run

# Kinds of read request; the p95 target applies to the search and listing kinds.
SEARCH_KINDS = (
    "search q common",
    "search q rare",
    "search q two words",
    "search tag",
    "search category",
)
LISTING_KINDS = ("list name", "list -created", "list -updated", "list page 2-5")
OTHER_KINDS = ("show package",)


def _words(text: str) -> list[str]:
    return text.split()


HEAD_WORDS = _words(
    """
web server database cache proxy api queue monitoring metrics logging storage backup auth
identity gateway search analytics dashboard stream message broker worker scheduler mail dns
vpn git build registry static site blog wiki chat notebook model inference pipeline sql
graph timeseries redis postgres mysql nginx python node java golang rust kafka rabbitmq
elastic grafana prometheus minio vault keycloak ldap oauth sso cdn load balancer ingress
certificate tls backend frontend admin portal store shop payment invoice crm erp ticket
helpdesk forum community media video audio image photo gallery upload download sync
replication cluster operator controller agent exporter collector tracing alerting
notification webhook event workflow automation runner batch job etl warehouse lake
report export import migration schema config secret policy firewall scanner security
audit compliance directory file share office document editor calendar contacts
"""
)
TAG_WORDS = _words(
    """
web database cache monitoring security storage messaging devops analytics ml networking
logging backup cms ecommerce collaboration media api iot testing ci cd observability
identity email search streaming queue dashboard nosql sql kubernetes serverless edge
python java node golang rust php ruby dotnet static productivity finance hr crm erp
game chat video audio photo maps geo science education health legal marketing
"""
)
CATEGORY_NAMES = _words(
    """
databases monitoring security storage messaging developer-tools analytics networking
web collaboration media machine-learning
"""
)[:CATEGORIES]


# -- data ----------------------------------------------------------------------


def _vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    """Domain words first, then made-up words: rank 1 is in most descriptions, the tail in few."""
    words = list(dict.fromkeys(HEAD_WORDS))
    seen = set(words)
    onsets = _words("b c d f g h j k l m n p r s t v z br cr dr fl gr kl pl pr st tr")
    vowels = _words("a e i o u ai ea io ou")
    while len(words) < size:
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
        if word not in seen and not any(word in w or w in word for w in HEAD_WORDS):
            seen.add(word)
            words.append(word)
    return words


def _zipf_cum_weights(n: int) -> list[float]:
    total, cum = 0.0, []
    for rank in range(1, n + 1):
        total += 1.0 / rank
        cum.append(total)
    return cum


def _manifest(name: str, version: str, kind: str, title: str, description: str, tags: list):
    """A manifest as `Manifest.raw` stores it: defaults filled."""
    return {
        "format": "catalog/v1",
        "name": name,
        "version": version,
        "type": kind,
        "title": title,
        "description": description,
        "author": "Bench Publisher",
        "license": "Apache-2.0",
        "tags": tags,
        "services": {
            "app": {
                "image": f"registry.example.com/{name.split('.')[-1]}:{version}",
                "command": [],
                "environment": {"LOG_LEVEL": "{{ parameters.log_level }}"},
                "ports": [{"container": 8080, "publish": True}],
                "volumes": [{"name": "data", "path": "/data"}],
                "depends_on": [],
                "healthcheck": {"http": {"port": 8080, "path": "/healthz"}, "retries": 10},
                "resources": {"memory": "256m", "cpus": 0.5, "pids": 256},
            }
        },
        "parameters": {
            "type": "object",
            "properties": {
                "log_level": {"type": "string", "default": "info", "enum": ["debug", "info"]},
                "replicas": {"type": "integer", "default": 1, "minimum": 1},
            },
        },
        "requires": {},
        "bindings": {},
        "outputs": {"url": "http://{{ services.app.hostname }}:8080/"},
        "actions": {},
    }


@dataclass
class Dataset:
    vocabulary: list[str]
    tags: list[str]
    admin_secret: str = ""
    admin_tenant: str = ""
    viewer_secrets: dict[str, str] = field(default_factory=dict)  # tenant name -> secret
    publisher_secrets: dict[str, str] = field(default_factory=dict)
    tenant_ids: dict[str, str] = field(default_factory=dict)  # name -> id
    # Package names by owner tenant id, and those every tenant sees (public and enabled).
    names_by_tenant: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    public_names: list[str] = field(default_factory=list)
    all_names: list[str] = field(default_factory=list)


def create_principals(url: str, data: Dataset) -> None:
    """Tenants, categories and tokens through the services, as the API would create them."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            data.admin_secret = bootstrap_admin(session, "bench")
            admin = authenticate(session.connection(), data.admin_secret)
            data.admin_tenant = admin.tenant_id
            data.tenant_ids["admin"] = admin.tenant_id
            for i in range(TENANTS):
                tenant = create_tenant(session, admin, f"team-{i}")
                data.tenant_ids[tenant.name] = tenant.id
            for name in CATEGORY_NAMES:
                create_category(session, admin, name, name.replace("-", " ").title())
            for i in range(3):
                data.viewer_secrets[f"team-{i}"] = issue_token(
                    session, admin, f"team-{i}", "viewer"
                )[1]
            for i in range(4):
                tenant = f"team-{i}"
                data.publisher_secrets[tenant] = issue_token(session, admin, tenant, "publisher")[1]
    finally:
        engine.dispose()


def seed(url: str, data: Dataset, rng: random.Random, count: int = PACKAGES) -> None:
    """`count` packages x VERSIONS versions in bulk INSERTs, shaped as `publish` writes them."""
    vocab, tags = data.vocabulary, data.tags
    word_cum = _zipf_cum_weights(len(vocab))
    tag_cum = _zipf_cum_weights(len(tags))
    tenants = list(data.tenant_ids.values())
    # A few big tenants and a long tail; the admin tenant publishes public packages.
    tenant_weights = [1.0 / (i + 1) for i in range(len(tenants))]
    now = datetime.now(UTC)
    packages, versions, links, used = [], [], [], set()
    for n in range(count):
        tenant_id = rng.choices(tenants, tenant_weights)[0]
        w1, w2 = rng.choices(vocab, cum_weights=word_cum, k=2)
        name = f"org.{'team' if tenant_id != data.admin_tenant else 'catalog'}.{w1}-{w2}"
        if name in used:
            name = f"{name}-{n}"
        used.add(name)
        words = rng.choices(vocab, cum_weights=word_cum, k=rng.randint(12, 40))
        description = " ".join(words).capitalize() + "."
        title = " ".join(w.capitalize() for w in (w1, w2, *rng.choices(vocab, k=rng.randint(0, 2))))
        package_tags = list(
            dict.fromkeys(rng.choices(tags, cum_weights=tag_cum, k=rng.randint(1, 5)))
        )
        kind = "library" if rng.random() < 0.15 else "application"
        public = tenant_id == data.admin_tenant or rng.random() < 0.35
        enabled = rng.random() < 0.97
        created = now - timedelta(seconds=rng.uniform(0, 2 * 365 * 86400))
        package_id = new_id()
        numbers = sorted(rng.sample(range(12), VERSIONS))
        moments = sorted(created + timedelta(seconds=rng.uniform(0, 86400 * 90)) for _ in numbers)
        moments[0] = created
        yanked_last = rng.random() < 0.03
        for i, (minor, moment) in enumerate(zip(numbers, moments, strict=True)):
            version = f"1.{minor}.0"
            versions.append(
                {
                    "id": new_id(),
                    "package_id": package_id,
                    "version": version,
                    "digest": "sha256:" + rng.randbytes(32).hex(),
                    "size": rng.randint(4_000, 5_000_000),
                    "manifest": _manifest(name, version, kind, title, description, package_tags),
                    "yanked": yanked_last and i == VERSIONS - 1,
                    "created_at": moment,
                }
            )
        latest = f"1.{numbers[-2 if yanked_last else -1]}.0"
        updated = moments[-1] + timedelta(days=rng.uniform(0, 30) if rng.random() < 0.2 else 0)
        packages.append(
            {
                "id": package_id,
                "name": name,
                "tenant_id": tenant_id,
                "visibility": "public" if public else "private",
                "enabled": enabled,
                "type": kind,
                "title": title,
                "description": description,
                "tags": package_tags,
                # Exactly what `_index_text` computes.
                "search_text": " ".join([name, title, description, *package_tags]).lower(),
                "short_name": short_name(name),
                "tag_index": "," + "".join(f"{t.lower()}," for t in package_tags),
                "latest_version": latest,
                "logo_digest": "sha256:" + rng.randbytes(32).hex() if rng.random() < 0.2 else None,
                "created_at": created,
                "updated_at": updated,
            }
        )
        if rng.random() < 0.6:
            for category in rng.sample(CATEGORY_NAMES, rng.randint(1, 2)):
                links.append({"package_id": package_id, "category": category})
        data.names_by_tenant[tenant_id].append(name)
        data.all_names.append(name)
        if public and enabled:
            data.public_names.append(name)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table, rows in (
                (Package.__table__, packages),
                (PackageVersion.__table__, versions),
                (package_categories, links),
            ):
                for start in range(0, len(rows), 2000):
                    conn.execute(table.insert(), rows[start : start + 2000])
            texts = [(row["name"], row["search_text"]) for row in packages]
            for start in range(0, len(texts), 2000):  # the search terms, as a publish writes them
                index_packages(conn, texts[start : start + 2000])
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE" if engine.dialect.name == "sqlite" else "VACUUM ANALYZE"))
    finally:
        engine.dispose()


# -- database and server -------------------------------------------------------


def create_database() -> tuple[str, str]:
    name = f"catalog_bench_{os.getpid()}_{secrets.token_hex(3)}"
    engine = create_engine(MAINTENANCE_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(MAINTENANCE_URL).set(database=name).render_as_string(False), name


def drop_database(name: str) -> None:
    engine = create_engine(MAINTENANCE_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(url: str, scratch: Path, port: int, log) -> subprocess.Popen:
    catalogctl = Path(sys.executable).parent / "catalogctl"
    if not catalogctl.exists():
        catalogctl = ROOT / ".venv" / "bin" / "catalogctl"
    env = {
        **os.environ,
        "CATALOG_HOME": str(scratch),
        "CATALOG_DATABASE_URL": url,
        "CATALOG_BLOB_DIR": str(scratch / "blobs"),
        "CATALOG_UPLOAD_RATE_LIMIT": "1000000/minute",
        "CATALOG_SECRET_KEY": new_key(),
        "CATALOG_READ_RATE_LIMIT": "1000000/minute",
    }
    command = [str(catalogctl), "serve", "--port", str(port), "--workers", "2", "--threads", "4"]
    return subprocess.Popen(
        command, env=env, cwd=scratch, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_healthy(server: subprocess.Popen, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", "/v1/health")
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer /v1/health within {timeout:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # gunicorn's master stops its workers
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # the session this script started
            server.wait()


# -- /proc: memory and CPU -----------------------------------------------------


def _children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path("/proc", entry, "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                found[ppid].append(int(entry))
    return found


def process_tree(pid: int) -> list[int]:
    children, tree, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def _status_kb(pid: int, key: str, name: str = "status") -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc", str(pid), name).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            stat = Path("/proc", str(pid), "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def backend_pids(database: str) -> list[int]:
    """PostgreSQL backends serving `database` (their title names it); none for SQLite."""
    found: list[int] = []
    if not database:
        return found
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if f" {database} ".encode() in Path("/proc", entry, "cmdline").read_bytes():
                    found.append(int(entry))
    return found


def machine_cpu() -> tuple[float, float, float]:
    """(busy, total, stolen) CPU seconds of all cores since boot; stolen: time the
    hypervisor gave the virtual CPUs to others, counted neither busy nor in the total."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    ticks = os.sysconf("SC_CLK_TCK")
    counted = values[:7]  # user nice system idle iowait irq softirq
    return (sum(counted) - values[3] - values[4]) / ticks, sum(counted) / ticks, values[7] / ticks


class CpuMeter:
    """CPU seconds used over a phase by the server, its database backends, this script, the rest."""

    def __init__(self, server_pid: int, database: str) -> None:
        self.server_pid, self.database = server_pid, database
        self.start = self._read()

    def _read(self) -> tuple[float, ...]:
        busy, total, stolen = machine_cpu()
        return (
            time.perf_counter(),
            cpu_seconds(process_tree(self.server_pid)),
            cpu_seconds(backend_pids(self.database)),
            time.process_time(),
            busy,
            total,
            stolen,
        )

    def report(self, label: str, requests: int, clients: float = 0.0) -> None:
        """`clients`: CPU seconds of the client processes, added to this script's."""
        end = self._read()
        wall, server, postgres, client, busy, total, stolen = (
            b - a for a, b in zip(self.start, end, strict=True)
        )
        client += clients
        others = max(0.0, busy - server - postgres - client)
        print(
            f"{label} context: {wall:.1f} s on {os.cpu_count()} cores, machine busy "
            f"{busy / max(total, 1e-9):.0%}, stolen by the hypervisor "
            f"{stolen / max(total + stolen, 1e-9):.1%}; CPU seconds: server {server:.1f}, its "
            f"postgres backends {postgres:.1f}, bench client {client:.1f}, other processes "
            f"{others:.1f}"
        )
        per = 1000 / max(requests, 1)
        print(
            f"{label} CPU per request: server {server * per:.2f} ms, postgres {postgres * per:.2f} "
            f"ms, bench client {client * per:.2f} ms"
        )
        if others > OTHERS_WARNING * total:
            print(
                f"WARNING: other processes used {others / total:.0%} of the machine during the "
                f"{label}; these figures understate what the API does on a machine of its own"
            )


class MemorySampler(threading.Thread):
    """Summed RSS (and PSS) of the server's process tree every SAMPLE_SECONDS, per phase."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.phase = "idle"
        self.peaks: dict[str, tuple[float, float, int]] = {}  # phase -> (rss MB, pss MB, n)
        self.stopping = threading.Event()
        self.at_peak: dict[str, list[float]] = {}  # phase -> RSS MB of each process at its peak

    def run(self) -> None:
        while not self.stopping.is_set():
            pids = process_tree(self.pid)  # the master first
            each = [_status_kb(p, "VmRSS:") / 1024 for p in pids]
            rss, pss = sum(each), sum(_status_kb(p, "Pss:", "smaps_rollup") for p in pids) / 1024
            old = self.peaks.get(self.phase, (0.0, 0.0, 0))
            if rss > old[0]:
                self.at_peak[self.phase] = each
            self.peaks[self.phase] = (max(old[0], rss), max(old[1], pss), max(old[2], len(pids)))
            self.stopping.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


# -- HTTP ----------------------------------------------------------------------


class Client:
    """One keep-alive connection; reconnects once when the server closed an idle one.

    A request that fails otherwise answers status 0, counted as an error, not a crash.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, secret: str, body=None, headers=None):
        headers = {"Authorization": f"Bearer {secret}", **(headers or {})}
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                # Only a connection the server closed while idle is worth a second try.
                if attempt == 2 or not isinstance(exc, ConnectionError):
                    return 0, repr(exc).encode()
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


# -- read load -----------------------------------------------------------------


class ReadMix:
    """Picks requests: kind, path and token, as a catalog's browsing users make them."""

    WEIGHTS = {
        "search q common": 14,
        "search q rare": 10,
        "search q two words": 6,
        "search tag": 12,
        "search category": 10,
        "list name": 6,
        "list -created": 8,
        "list -updated": 8,
        "paginate": 12,
        "show package": 14,
    }

    def __init__(self, data: Dataset) -> None:
        self.data = data
        self.common = data.vocabulary[:40]
        self.rare = data.vocabulary[1000:]
        self.kinds = list(self.WEIGHTS)
        self.weights = list(self.WEIGHTS.values())
        self.viewers = list(data.viewer_secrets.items())

    def principal(self, rng: random.Random) -> tuple[str, str, str | None]:
        """(label, secret, tenant id or None for admin): 70% tenant viewers, 30% admin."""
        if rng.random() < 0.3:
            return "admin", self.data.admin_secret, None
        tenant, secret = rng.choice(self.viewers)
        return "tenant", secret, self.data.tenant_ids[tenant]

    def query(self, kind: str, rng: random.Random) -> dict[str, str]:
        if kind == "search q common":
            return {"q": rng.choice(self.common)}
        if kind == "search q rare":
            # One in ten is a word no package has (a typo): every row is looked at.
            return {
                "q": rng.choice(self.rare) if rng.random() < 0.9 else "zzqx" + str(rng.random())
            }
        if kind == "search q two words":
            return {"q": f"{rng.choice(self.common)} {rng.choice(self.data.vocabulary[40:400])}"}
        if kind == "search tag":
            return {"tag": rng.choice(self.data.tags[:30])}
        if kind == "search category":
            return {"category": rng.choice(CATEGORY_NAMES)}
        if kind == "list name":
            return {}
        if kind == "list -created":
            return {"sort": "-created"}
        if kind == "list -updated":
            return {"sort": "-updated"}
        raise ValueError(kind)

    def visible_name(self, rng: random.Random, tenant_id: str | None) -> str:
        if tenant_id is None:
            return rng.choice(self.data.all_names)
        own = self.data.names_by_tenant.get(tenant_id, [])
        if own and rng.random() < 0.4:
            return rng.choice(own)
        return rng.choice(self.data.public_names)


@dataclass
class Sample:
    kind: str
    who: str
    ms: float
    status: int


def read_client(
    port: int, mix: ReadMix, seed: int, measure_from: float, until: float
) -> tuple[list[Sample], float]:
    """One client's reads until `until`: the samples from `measure_from` on, and the CPU
    seconds the client used from then."""
    rng = random.Random(seed)
    client = Client(port)
    samples: list[Sample] = []
    cpu_from: float | None = None

    def call(kind: str, who: str, path: str, secret: str) -> bytes:
        nonlocal cpu_from
        started = time.perf_counter()
        if started >= measure_from and cpu_from is None:
            cpu_from = time.process_time()
        status, body = client.request("GET", path, secret)
        elapsed = (time.perf_counter() - started) * 1000
        if started >= measure_from:
            samples.append(Sample(kind, who, elapsed, status))
        return body if status == 200 else b""

    try:
        while time.perf_counter() < until:
            kind = rng.choices(mix.kinds, mix.weights)[0]
            who, secret, tenant_id = mix.principal(rng)
            if kind == "show package":
                name = mix.visible_name(rng, tenant_id)
                call(kind, who, f"/v1/packages/{name}", secret)
            elif kind == "paginate":
                first = rng.choice(["list name", "list -created", "list -updated", "search tag"])
                params = mix.query(first, rng)
                body = call(first, who, "/v1/packages?" + urlencode(params), secret)
                for _ in range(rng.randint(1, 4)):  # pages 2 to 5
                    cursor = json.loads(body).get("next_cursor") if body else None
                    if not cursor:
                        break
                    path = "/v1/packages?" + urlencode({**params, "cursor": cursor})
                    body = call("list page 2-5", who, path, secret)
            else:
                path = "/v1/packages?" + urlencode(mix.query(kind, rng))
                call(kind, who, path, secret)
    finally:
        client.close()
    return samples, (time.process_time() - cpu_from) if cpu_from is not None else 0.0


# -- uploads -------------------------------------------------------------------


def build_archive(
    name: str, version: str, title: str, tags: list[str], rng: random.Random
) -> bytes:
    manifest = (
        "format: catalog/v1\n"
        f"name: {name}\n"
        f"version: {version}\n"
        "type: application\n"
        f"title: {title}\n"
        f"description: {title} packaged for the benchmark, with a data file under files/.\n"
        "license: Apache-2.0\n"
        f"tags: [{', '.join(tags)}]\n"
        "parameters:\n"
        "  type: object\n"
        "  properties:\n"
        "    greeting: {type: string, default: hello, maxLength: 200}\n"
        "services:\n"
        "  web:\n"
        "    image: catalog-test/busybox:latest\n"
        '    command: [httpd, -f, -p, "8080", -h, /www]\n'
        "    ports:\n"
        "      - {container: 8080, publish: true}\n"
        "    files:\n"
        "      /www/data.bin: files/data.bin\n"
        "    resources: {memory: 32m, cpus: 0.25, pids: 64}\n"
    ).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member, content in (
            ("manifest.yaml", manifest),
            ("files/data.bin", rng.randbytes(UPLOAD_FILE_BYTES)),  # incompressible
        ):
            info = tarfile.TarInfo(member)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def multipart(archive: bytes) -> tuple[bytes, str]:
    """The body `catalogctl package upload` sends: one multipart field `file`."""
    boundary = "bench" + secrets.token_hex(12)
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="package.tar.gz"\r\n'
        "Content-Type: application/gzip\r\n\r\n"
    ).encode()
    return head + archive + f"\r\n--{boundary}--\r\n".encode(), boundary


def plan_uploads(data: Dataset, count: int, clients: int, rng: random.Random):
    """Per client: (path, body, content type); 3 of 4 new packages, 1 of 4 new versions."""
    tenants = list(data.publisher_secrets)[:clients]
    plans: list[list[tuple[str, bytes, str]]] = [[] for _ in tenants]
    taken: set[str] = set()
    for n in range(count):
        slot = n % len(tenants)
        tenant = tenants[slot]
        own = [x for x in data.names_by_tenant[data.tenant_ids[tenant]] if x not in taken]
        if own and n % 4 == 3:
            name = rng.choice(own)
            taken.add(name)
            version = "2.0.0"
        else:
            name, version = f"org.upload.{tenant}-pkg{n}", "1.0.0"
        tags = rng.sample(data.tags[:20], 2)
        archive = build_archive(name, version, f"Upload {n}", tags, rng)
        body, boundary = multipart(archive)
        params = {"visibility": "private"}
        if n % 3 == 0:
            params["categories"] = rng.choice(CATEGORY_NAMES)
        path = "/v1/packages?" + urlencode(params)
        plans[slot].append((path, body, f"multipart/form-data; boundary={boundary}"))
    return tenants, plans


def upload_client(port: int, secret: str, plan) -> tuple[list[float], list[str], float]:
    """One client's uploads, one after another: latencies (ms), errors, CPU seconds used."""
    client = Client(port)
    latencies: list[float] = []
    errors: list[str] = []
    cpu_from = time.process_time()
    try:
        for path, body, content_type in plan:
            started = time.perf_counter()
            status, answer = client.request(
                "POST", path, secret, body=body, headers={"Content-Type": content_type}
            )
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 201:
                errors.append(f"{status} {answer[:200]!r}")
    finally:
        client.close()
    return latencies, errors, time.process_time() - cpu_from


def in_processes(jobs: list[tuple[Callable, tuple]], patience: float = 600) -> list:
    """Each job `(function, args)` in a process of its own, as separate client programs are;
    their return values, in the order of `jobs`.

    Threads of one process would share its interpreter lock: a client whose answer has
    arrived would wait for the others' Python code before it noticed, and that wait would
    be counted as the server's latency.
    """
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()

    def child(index: int, function: Callable, args: tuple) -> None:
        try:
            results.put((index, function(*args), None))
        except BaseException as exc:  # reported by the parent, which raises it
            results.put((index, None, repr(exc)))

    processes = [
        context.Process(target=child, args=(i, function, args), daemon=True)
        for i, (function, args) in enumerate(jobs)
    ]
    for process in processes:
        process.start()
    deadline = time.monotonic() + patience
    found: dict[int, Any] = {}
    try:
        while len(found) < len(jobs):
            if results.empty():
                if time.monotonic() > deadline or not any(p.is_alive() for p in processes):
                    raise RuntimeError(f"{len(jobs) - len(found)} bench clients did not report")
                time.sleep(0.05)
                continue
            index, value, error = results.get()
            if error is not None:
                raise RuntimeError(f"bench client {index} failed: {error}")
            found[index] = value
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    return [found[i] for i in range(len(jobs))]


# -- report --------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report_reads(samples: list[Sample], seconds: float) -> tuple[bool, dict[str, float]]:
    """Prints the figures; whether they met their targets, and the p95 of each kind and group."""
    by_kind: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        by_kind[sample.kind].append(sample.ms)
        by_kind[f"{sample.kind} [{sample.who}]"].append(sample.ms)
    ok = True
    print(f"{'kind':<34}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind in (*SEARCH_KINDS, *LISTING_KINDS, *OTHER_KINDS):
        for label in (kind, f"{kind} [tenant]", f"{kind} [admin]"):
            values = sorted(by_kind.get(label, []))
            if values:
                print(
                    f"{label:<34}{len(values):>7}{percentile(values, 50):>9.1f}"
                    f"{percentile(values, 95):>9.1f}{percentile(values, 99):>9.1f}"
                    f"{values[-1]:>9.1f}"
                )
    groups = {
        "search": [s.ms for s in samples if s.kind in SEARCH_KINDS],
        "listing": [s.ms for s in samples if s.kind in LISTING_KINDS],
        "overall": [s.ms for s in samples],  # with `show package`, which has no target
    }
    p95s: dict[str, float] = {}
    for group, values in groups.items():
        values.sort()
        p95 = p95s[group] = percentile(values, 95)
        target = (
            f" (target p95 < {TARGET_P95_MS:.0f} ms, ratio {p95 / TARGET_P95_MS:.2f}) "
            f"{verdict(p95 < TARGET_P95_MS)}"
        )
        print(
            f"api {group} p50 {percentile(values, 50):.1f} ms, p95 {p95:.1f} ms, "
            f"p99 {percentile(values, 99):.1f} ms{target if group != 'overall' else ''}"
        )
        if group != "overall":
            ok &= p95 < TARGET_P95_MS
    # Each kind of search and listing on its own: a slow rare search must not hide in the mix.
    for kind in (*SEARCH_KINDS, *LISTING_KINDS):
        p95 = p95s[kind] = percentile(sorted(by_kind.get(kind, [])), 95)
        if not p95 < TARGET_P95_MS:
            print(f"api {kind} p95 {p95:.1f} ms (target < {TARGET_P95_MS:.0f} ms) MISSED")
            ok = False
    print(f"api reads {len(samples) / seconds:.0f} req/s over {seconds:.1f} s")
    errors = [s for s in samples if s.status != 200]
    if errors:
        statuses = sorted({s.status for s in errors})
        print(f"api reads: {len(errors)} answers were not 200 (statuses {statuses}) MISSED")
        ok = False
    return ok, p95s


def run_reads(port: int, data: Dataset, args, sampler, meter_for) -> tuple[bool, dict]:
    """Every client runs the mix; only requests started after the warm-up count."""
    mix = ReadMix(data)
    begin = time.perf_counter()
    measure_from, until = begin + args.warmup, begin + args.warmup + args.seconds

    def phase() -> None:  # in a thread: the clients run in processes of their own
        time.sleep(max(0.0, measure_from - time.perf_counter()))
        sampler.phase = "reads"
        meters.append(meter_for())

    meters: list[CpuMeter] = []
    marker = threading.Thread(target=phase)
    marker.start()
    jobs = [(read_client, (port, mix, SEED + i, measure_from, until)) for i in range(args.clients)]
    results = in_processes(jobs)
    marker.join()
    seconds = time.perf_counter() - measure_from
    samples = [sample for client_samples, _ in results for sample in client_samples]
    print(f"== reads: {args.clients} clients, {seconds:.1f} s after {args.warmup:.0f} s warm-up")
    ok, p95s = report_reads(samples, seconds)
    meters[0].report("reads", len(samples), clients=sum(cpu for _, cpu in results))
    return ok, p95s


def run_uploads(port: int, data: Dataset, plans, args, sampler, meter_for) -> bool:
    """Each client publishes its tenant's share, one upload after another."""
    tenants, per_client = plans
    sampler.phase = "uploads"
    meter = meter_for()
    begin = time.perf_counter()
    jobs = [
        (upload_client, (port, data.publisher_secrets[tenant], plan))
        for tenant, plan in zip(tenants, per_client, strict=True)
    ]
    results = in_processes(jobs)
    rate = sum(len(latencies) for latencies, _, _ in results) / (time.perf_counter() - begin)
    latencies = sorted(ms for client_latencies, _, _ in results for ms in client_latencies)
    errors = [error for _, client_errors, _ in results for error in client_errors]
    size_kb = len(per_client[0][0][1]) / 1024
    print(
        f"== uploads: {args.upload_clients} clients, {len(latencies)} uploads of {size_kb:.0f} KB"
    )
    print(
        f"api upload p50 {percentile(latencies, 50):.1f} ms, "
        f"p95 {percentile(latencies, 95):.1f} ms, p99 {percentile(latencies, 99):.1f} ms"
    )
    ok = rate >= TARGET_UPLOADS_PER_S
    print(
        f"api upload rate {rate:.1f}/s (target >= {TARGET_UPLOADS_PER_S:.0f}/s, "
        f"ratio {rate / TARGET_UPLOADS_PER_S:.2f}) {verdict(ok)}"
    )
    if errors:
        print(f"api uploads: {len(errors)} failed, first: {errors[0]} MISSED")
        ok = False
    meter.report("uploads", len(latencies), clients=sum(cpu for _, _, cpu in results))
    return ok


def report_memory(sampler: MemorySampler) -> bool:
    print(f"== memory: gunicorn master + workers, sampled every {SAMPLE_SECONDS} s")
    peak = 0.0
    for phase, (rss, pss, count) in sampler.peaks.items():
        each = sampler.at_peak.get(phase, [])
        split = f"master {each[0]:.0f} MB, workers " + ", ".join(f"{m:.0f}" for m in each[1:])
        print(
            f"api memory {phase}: peak RSS {rss:.0f} MB ({split} MB; PSS {pss:.0f} MB), "
            f"{count} processes"
        )
        peak = max(peak, rss)
    ok = peak < TARGET_RSS_MB
    print(
        f"api memory peak RSS {peak:.0f} MB (target < {TARGET_RSS_MB:.0f} MB, "
        f"ratio {peak / TARGET_RSS_MB:.2f}) {verdict(ok)}"
    )
    return ok


def sizes(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of package counts: {text!r}") from None
    if not values or min(values) < 100:
        raise argparse.ArgumentTypeError("each size is a count of at least 100 packages")
    return values


def run_size(count: int, args, sqlite: bool = False) -> tuple[bool, dict[str, float]]:
    """One catalog of `count` packages, seeded, served and measured: reads, and uploads and
    memory unless on SQLite (the embedded profile, measured for its searches)."""
    profile = "sqlite" if sqlite else "postgresql"
    print(f"==== {count} packages on {profile}")
    rng = random.Random(SEED)  # the same data set at every size, as far as it reaches
    data = Dataset(vocabulary=_vocabulary(rng), tags=list(dict.fromkeys(TAG_WORDS)))
    ok, p95s = True, {}
    scratch = Path(tempfile.mkdtemp(prefix="catalog-bench-api-"))
    database, server, sampler, log = None, None, None, None
    try:
        if sqlite:
            url = f"sqlite:///{scratch / 'catalog.db'}"
        else:
            url, database = create_database()
        started = time.perf_counter()
        upgrade(url)
        create_principals(url, data)
        seed(url, data, rng, count)
        print(
            f"seeded {count} packages x {VERSIONS} versions, {TENANTS + 1} tenants, "
            f"{len(data.public_names)} public and enabled, in {time.perf_counter() - started:.1f} s"
        )
        port = free_port()
        log = (scratch / "server.log").open("wb")
        server = start_server(url, scratch, port, log)
        wait_healthy(server, port)
        sampler = MemorySampler(server.pid)
        sampler.start()
        pid, backends = server.pid, database or ""

        def meter_for() -> CpuMeter:
            return CpuMeter(pid, backends)

        read_ok, p95s = run_reads(port, data, args, sampler, meter_for)
        if sqlite:  # its searches are measured; the targets are PostgreSQL's
            sampler.stop()
        else:
            plans = plan_uploads(data, args.uploads, args.upload_clients, rng)
            ok &= read_ok
            ok &= run_uploads(port, data, plans, args, sampler, meter_for)
            sampler.stop()
            ok &= report_memory(sampler)
    except Exception:
        if log is not None:
            log.flush()
            tail = (scratch / "server.log").read_text(errors="replace")[-3000:]
            print(f"server log (tail):\n{tail}", file=sys.stderr)
        raise
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        if server is not None:
            stop_server(server)
        if log is not None:
            log.close()
        if database is not None:
            drop_database(database)
        shutil.rmtree(scratch, ignore_errors=True)
    return ok, p95s


def report_growth(figures: dict[int, dict[str, float]]) -> bool:
    """How the p95 of every kind grew from the smallest catalog to the largest."""
    small, large = min(figures), max(figures)
    print(f"== growth: p95 at {large} packages over p95 at {small}")
    ok = True
    for kind in (*SEARCH_KINDS, *LISTING_KINDS):
        ratio = figures[large][kind] / figures[small][kind]
        kind_ok = ratio <= TARGET_GROWTH
        ok &= kind_ok
        print(
            f"growth: {kind} p95 {figures[small][kind]:.1f} ms -> {figures[large][kind]:.1f} ms, "
            f"{ratio:.2f}x (target <= {TARGET_GROWTH}x) {verdict(kind_ok)}"
        )
    ratio = figures[large]["search"] / figures[small]["search"]
    print(f"growth: search p95 at {large} packages is {ratio:.2f}x that at {small}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured read load")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured read load first")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--uploads", type=int, default=500)
    parser.add_argument("--upload-clients", type=int, default=4)
    parser.add_argument(
        "--packages", type=sizes, default=[PACKAGES], help="catalog sizes, e.g. 10000,100000"
    )
    parser.add_argument(
        "--sqlite-packages", type=int, default=PACKAGES, help="SQLite's size; 0: no SQLite run"
    )
    args = parser.parse_args()

    print(
        f"machine: {os.cpu_count()} cores, load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} before the benchmark"
    )
    ok = True
    figures: dict[int, dict[str, float]] = {}
    for count in args.packages:
        size_ok, figures[count] = run_size(count, args)
        ok &= size_ok
    if len(figures) > 1:
        ok &= report_growth(figures)
    if args.sqlite_packages:
        _, sqlite_figures = run_size(args.sqlite_packages, args, sqlite=True)
        print(
            f"sqlite search p95 {sqlite_figures['search']:.1f} ms at {args.sqlite_packages} "
            f"packages (the embedded profile; no target)"
        )
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} after the benchmark")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
