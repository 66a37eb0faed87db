"""The one place that reads `CATALOG_*` environment variables: a frozen `Settings`, built once."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def _prefix(value: str) -> int:
    return int(value.removeprefix("/"))


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every setting of the service, its workers and its tracker, typed.

    Each field `name` is read from the variable `CATALOG_<NAME>`; the paths default to
    places under CATALOG_HOME (embedded defaults: SQLite, a broker that needs no server).
    """

    catalog_home: str
    database_url: str
    broker_url: str
    blob_dir: str
    secret_key_file: str
    docker_url: str = ""  # empty: the engine from DOCKER_HOST or the local socket
    max_upload_bytes: int = 64 * 1024 * 1024
    max_image_upload_bytes: int = 8 * 1024 * 1024 * 1024  # an offline image's tarball
    upload_rate_limit: str = "60/minute"  # per token
    read_rate_limit: str = "1200/minute"  # per token, every GET and HEAD together
    plan_rate_limit: str = "60/minute"  # per token: a plan renders every template of a draft
    # Requests with a missing or invalid token, per remote address (guessing tokens).
    auth_failure_rate_limit: str = "60/minute"
    ratelimit_storage_url: str = "memory://"
    # Refused writes (401, 403, 409, 429) recorded in the audit trail per caller; past it a
    # caller's refusals are not recorded, so a flood of them cannot fill the table.
    audit_refusal_rate_limit: str = "120/minute"
    # Concurrent `follow=1` streams (catalog/streams.py): each holds an API thread, so
    # STREAMS_PER_PROCESS stays below `catalogctl serve --threads` (4).
    streams_per_process: int = 2
    streams_per_token: int = 2
    db_pool_size: int = 10
    log_level: str = "INFO"
    log_format: str = "text"  # or json: one JSON object per line (catalog/logformat.py)
    host_port_range: str = "20000-29999"  # host ports for published container ports
    # Each environment's bridge network takes a /NETWORK_PREFIX subnet of this pool: the
    # engine's default pools number only ~31 bridge networks. Empty: the engine chooses.
    network_pool: str = "10.210.0.0/16"
    network_prefix: int = field(default=24, metadata={"read": _prefix})  # 256 networks
    # Readiness of a service without a healthcheck: it stays running this long. Catches a
    # process that dies on start (bad command or config); real readiness needs a
    # healthcheck. It adds to every such deploy: after the last container starts, the
    # deploy waits this long (docker-compose and Kubernetes wait for nothing).
    min_running_seconds: float = 0.25
    allow_pull: bool = field(default=True, metadata={"read": _flag})  # pull missing images
    # Registries service images may come from: host[:port] names, "*" for any public one
    # (loopback, link-local, private and local names only when listed; packages.imageref).
    registries: str = "*"
    # ca.pem, cert.pem and key.pem the API presents to registered hosts' tcp:// engines
    # (verified TLS); without them only ssh:// and unix:// engine addresses are accepted.
    docker_tls_dir: str = ""
    # Containers one deployment creates and starts at once (its engine calls; readiness
    # waits take no slot). The engine serializes much of a start itself; 16 lets a typical
    # environment queue all its starts at once (docker-compose allows 64).
    deploy_parallelism: int = 16
    max_active_deploys: int = 20  # queued or running deployments per tenant
    resync_seconds: float = 10.0
    resync_stale_seconds: float = 15.0  # a published deployment younger than this is in flight
    # Volume snapshots before a data-touching upgrade (workers/deploy/safekeeping.py): the
    # image of the short-lived helper containers that copy a volume (it needs sh, cp, rm and
    # du; never pulled: docker-compose.yml builds the catalog's own), and how many later
    # successful revisions a snapshot outlives the first successful one at or after its own.
    snapshot_image: str = "container-catalog:latest"
    snapshot_retention: int = 2
    # How often bundled images nothing needs are removed from the engine (0: never).
    prune_images_seconds: float = 3600.0
    lease_seconds: float = 20.0  # an environment lease lasts this long unless renewed
    task_queue: str = "catalog"  # the broker queue workers consume
    # The registered Docker host a worker or tracker serves (`catalogctl admin host add`);
    # empty: the default engine, which runs the environments placed on no host.
    host_name: str = ""
    log_budget_bytes: int = 8 * 1024**3  # container logs the engine host may hold in all
    log_share_bytes: int = 10 * 1024**2  # each container's fixed share of that budget
    public_host: str = "127.0.0.1"  # the host shown in app endpoints
    # The tracker (`catalogctl tracker`): engine events, relists, restarts and repairs.
    crashloop_deaths: int = 5  # deaths of one container within the window: crashloop
    crashloop_window_seconds: float = 60.0
    restart_backoff_seconds: float = 1.0  # the first restart's delay; doubles with each death
    restart_backoff_max_seconds: float = 30.0
    tracker_queue_size: int = 1000  # engine events waiting; when full: drop, then relist
    tracker_relist_seconds: float = 5.0  # full comparison of records with the engine
    tracker_reconnect_max_seconds: float = 5.0  # the cap of the reconnect backoff
    tracker_repair_workers: int = 2  # environments repaired at once
    # Keys that encrypt secret parameters at rest (catalog/secretbox.py): comma-separated,
    # the first encrypts, all decrypt. Unset: read from SECRET_KEY_FILE if it exists
    # (`catalogctl up` creates one, mode 0600).
    secret_key: str = ""
    # A bearer token that may read /v1/metrics and nothing else (a Prometheus scraper's);
    # empty: only an admin's token reads the metrics.
    metrics_token: str = ""
    # Webhooks (catalog/services/webhooks.py): loopback, private and reserved addresses are
    # refused unless listed here (comma-separated networks, addresses or host names).
    webhook_allow: str = ""
    webhook_max_attempts: int = 6  # a delivery is given up after this many failed attempts
    webhook_retry_seconds: float = 5.0  # the first retry's delay; doubles with each failure
    webhook_timeout_seconds: float = 5.0  # one attempt's connect and read, each
    # Templates render in a child process per deployment, killed past these limits.
    render_time_limit_seconds: float = 5.0  # wall-clock time of all of one deployment's
    render_memory_mb: int = 256  # memory the child may take beyond its interpreter
    # Time limits of the worker's tasks. A deployment fails (and is undone) past its limit,
    # counted from its first attempt; Celery's soft limit follows shortly after as a
    # backstop, and its hard limit (the task's process is killed) after that.
    deploy_time_limit_seconds: float = 1800.0
    teardown_time_limit_seconds: float = 600.0
    action_time_limit_seconds: float = 900.0  # a package action's own timeout is at most 10 min
    # Quotas of one tenant, whatever its packages ask for.
    tenant_max_environments: int = 100
    tenant_max_published_ports: int = 200  # host ports its running environments hold
    tenant_max_offline_image_bytes: int = 64 * 1024**3  # offline images' tarballs, together

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes` (field names), checked as `load` checks."""
        return _checked(dataclasses.replace(self, **changes))

    def overridden(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with `overrides` given by setting name (`DATABASE_URL`: ...)."""
        return self.replace(**{name.lower(): value for name, value in overrides.items()})

    def as_mapping(self) -> dict[str, Any]:
        """Setting name -> value, the names of the `CATALOG_<NAME>` variables."""
        return {name.upper(): value for name, value in dataclasses.asdict(self).items()}


NAMES = frozenset(f.name.upper() for f in dataclasses.fields(Settings))

# Settings an empty variable sets (to "", which turns them off) rather than leaves unset.
EMPTY_MEANS_OFF = frozenset({"NETWORK_POOL"})


def _readers() -> dict[str, Callable[[str], Any]]:
    """Setting name -> how to read its CATALOG_<NAME> variable."""
    types = {"str": str, "int": int, "float": float}
    return {
        f.name.upper(): f.metadata.get("read") or types[str(f.type)]
        for f in dataclasses.fields(Settings)
        if f.name != "catalog_home"
    }


READERS = _readers()


def _home_paths(environ: Mapping[str, str]) -> dict[str, Any]:
    home = Path(environ.get("CATALOG_HOME", "var")).resolve()
    return {
        "CATALOG_HOME": str(home),
        "DATABASE_URL": f"sqlite:///{home / 'catalog.db'}",
        "BROKER_URL": f"sqla+sqlite:///{home / 'broker.db'}",
        "BLOB_DIR": str(home / "blobs"),
        "SECRET_KEY_FILE": str(home / "secret.key"),
    }


def from_environ(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Settings given by `CATALOG_<NAME>` variables, converted to their types."""
    settings: dict[str, Any] = {}
    for name, read in READERS.items():
        value = environ.get(f"CATALOG_{name}")
        if value is None or (value == "" and name not in EMPTY_MEANS_OFF):
            continue
        try:
            settings[name] = read(value)
        except ValueError as exc:
            raise ValueError(f"CATALOG_{name}={value!r}: {exc}") from None
    return settings


def defaults(environ: Mapping[str, str] = os.environ) -> Settings:
    """The embedded defaults, their paths under `environ`'s CATALOG_HOME (default ./var)."""
    return Settings(**{name.lower(): v for name, v in _home_paths(environ).items()})


def check_network_pool(pool: str, prefix: int) -> None:
    """Refuse a pool that is not an IPv4 network, or a prefix its subnets cannot have."""
    if not pool:
        return
    try:
        network = ipaddress.IPv4Network(pool)
    except ValueError as exc:
        raise ValueError(f"CATALOG_NETWORK_POOL={pool!r}: not an IPv4 network ({exc})") from None
    if not network.prefixlen <= prefix <= 29:
        raise ValueError(
            f"CATALOG_NETWORK_PREFIX={prefix}: must lie between the pool's prefix "
            f"(/{network.prefixlen} for {pool}) and 29"
        )


def secret_keys(settings: Settings) -> str:
    """The text of the secret keys: SECRET_KEY, else the SECRET_KEY_FILE's content if it
    exists, else "" (no key)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.secret_key_file)
    if settings.secret_key_file and path.is_file():
        return path.read_text()
    return ""


def check_render_limits(seconds: float, memory_mb: int) -> None:
    """Refuse render limits no template could render within."""
    if not 0 < seconds <= 3600:
        raise ValueError(f"CATALOG_RENDER_TIME_LIMIT_SECONDS={seconds}: must lie in (0, 3600]")
    if memory_mb < 16:
        raise ValueError(f"CATALOG_RENDER_MEMORY_MB={memory_mb}: must be at least 16")


METRICS_TOKEN_CHARS = 32  # a guessable scraper token would open the metrics to anyone


def _checked(settings: Settings) -> Settings:
    if settings.metrics_token and len(settings.metrics_token) < METRICS_TOKEN_CHARS:
        raise ValueError(
            f"CATALOG_METRICS_TOKEN must be at least {METRICS_TOKEN_CHARS} characters "
            "(`catalogctl admin new-secret-key` makes one)"
        )
    if settings.log_format not in ("text", "json"):
        raise ValueError(f"CATALOG_LOG_FORMAT is {settings.log_format!r}: text or json")
    check_network_pool(settings.network_pool, settings.network_prefix)
    check_render_limits(settings.render_time_limit_seconds, settings.render_memory_mb)
    if settings.snapshot_retention < 0:
        raise ValueError(f"CATALOG_SNAPSHOT_RETENTION={settings.snapshot_retention}: must be >= 0")
    if not settings.snapshot_image:
        raise ValueError("CATALOG_SNAPSHOT_IMAGE must name the helper image of volume snapshots")
    return settings


def load(
    environ: Mapping[str, str] = os.environ, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """The defaults overlaid with the environment's variables, then with `overrides`
    (setting names: `{"DATABASE_URL": ...}`), checked."""
    values = {**_home_paths(environ), **from_environ(environ), **(overrides or {})}
    unknown = sorted(set(values) - NAMES)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")
    return _checked(Settings(**{name.lower(): value for name, value in values.items()}))


_current: Settings | None = None


def current() -> Settings:
    """This process's settings: loaded from the environment on first use, then kept."""
    global _current
    if _current is None:
        _current = load()
    return _current


def configure(overrides: Mapping[str, Any]) -> Settings:
    """Make this process's settings the environment's with `overrides` (a command's
    options, such as `--host-name`); processes it forks afterwards inherit them."""
    global _current
    _current = load(overrides=overrides)
    return _current
