"""The one place that reads `CATALOG_*` environment variables into settings."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def _home(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("CATALOG_HOME", "var")).resolve()


def defaults(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Embedded defaults: SQLite, a broker that needs no server, files under CATALOG_HOME."""
    home = _home(environ)
    return {
        "CATALOG_HOME": str(home),
        "DATABASE_URL": f"sqlite:///{home / 'catalog.db'}",
        "BROKER_URL": f"sqla+sqlite:///{home / 'broker.db'}",
        "DOCKER_URL": "",  # empty: the engine from DOCKER_HOST or the local socket
        "BLOB_DIR": str(home / "blobs"),
        "MAX_UPLOAD_BYTES": 64 * 1024 * 1024,
        "UPLOAD_RATE_LIMIT": "60/minute",  # per token
        "READ_RATE_LIMIT": "1200/minute",  # per token, every GET and HEAD together
        # Requests with a missing or invalid token, per remote address (guessing tokens).
        "AUTH_FAILURE_RATE_LIMIT": "60/minute",
        "RATELIMIT_STORAGE_URL": "memory://",
        # Concurrent `follow=1` streams (catalog/streams.py): each holds an API thread, so
        # STREAMS_PER_PROCESS stays below `catalogctl serve --threads` (4).
        "STREAMS_PER_PROCESS": 2,
        "STREAMS_PER_TOKEN": 2,
        "DB_POOL_SIZE": 10,
        "LOG_LEVEL": "INFO",
        "HOST_PORT_RANGE": "20000-29999",  # host ports for published container ports
        # Each environment's bridge network takes a /NETWORK_PREFIX subnet of this pool: the
        # engine's default pools number only ~31 bridge networks. Empty: the engine chooses.
        "NETWORK_POOL": "10.210.0.0/16",
        "NETWORK_PREFIX": 24,  # 256 environment networks in the default pool
        # Readiness of a service without a healthcheck: it stays running this long. Catches a
        # process that dies on start (bad command or config); real readiness needs a
        # healthcheck. It adds to every such deploy: after the last container starts, the
        # deploy waits this long (docker-compose and Kubernetes wait for nothing).
        "MIN_RUNNING_SECONDS": 0.25,
        "ALLOW_PULL": True,  # pull missing images from their registry
        # Registries service images may come from: host[:port] names, "*" for any public one
        # (loopback, link-local, private and local names only when listed; packages.imageref).
        "REGISTRIES": "*",
        # ca.pem, cert.pem and key.pem the API presents to registered hosts' tcp:// engines
        # (verified TLS); without them only ssh:// and unix:// engine addresses are accepted.
        "DOCKER_TLS_DIR": "",
        # Containers one deployment creates and starts at once (its engine calls; readiness
        # waits take no slot). The engine serializes much of a start itself; 16 lets a typical
        # environment queue all its starts at once (docker-compose allows 64).
        "DEPLOY_PARALLELISM": 16,
        "MAX_ACTIVE_DEPLOYS": 20,  # queued or running deployments per tenant
        "RESYNC_SECONDS": 10.0,
        "RESYNC_STALE_SECONDS": 15.0,  # a published deployment younger than this is in flight
        # How often bundled images nothing needs are removed from the engine (0: never).
        "PRUNE_IMAGES_SECONDS": 3600.0,
        "LEASE_SECONDS": 20.0,  # an environment lease lasts this long unless renewed
        "TASK_QUEUE": "catalog",  # the broker queue workers consume
        # The registered Docker host a worker or tracker serves (`catalogctl admin host add`);
        # empty: the default engine, which runs the environments placed on no host.
        "HOST_NAME": "",
        "LOG_BUDGET_BYTES": 8 * 1024**3,  # container logs the engine host may hold in all
        "LOG_SHARE_BYTES": 10 * 1024**2,  # each container's fixed share of that budget
        "PUBLIC_HOST": "127.0.0.1",  # the host shown in app endpoints
        # The tracker (`catalogctl tracker`): engine events, relists, restarts and repairs.
        "CRASHLOOP_DEATHS": 5,  # deaths of one container within the window: crashloop
        "CRASHLOOP_WINDOW_SECONDS": 60.0,
        "RESTART_BACKOFF_SECONDS": 1.0,  # the first restart's delay; doubles with each death
        "RESTART_BACKOFF_MAX_SECONDS": 30.0,
        "TRACKER_QUEUE_SIZE": 1000,  # engine events waiting; when full: drop, then relist
        "TRACKER_RELIST_SECONDS": 5.0,  # full comparison of records with the engine
        "TRACKER_RECONNECT_MAX_SECONDS": 5.0,  # the cap of the reconnect backoff
        "TRACKER_REPAIR_WORKERS": 2,  # environments repaired at once
        # Keys that encrypt secret parameters at rest (catalog/secretbox.py): comma-separated,
        # the first encrypts, all decrypt. Unset: read from SECRET_KEY_FILE if it exists
        # (`catalogctl up` creates one, mode 0600).
        "SECRET_KEY": "",
        "SECRET_KEY_FILE": str(home / "secret.key"),
        # Templates render in a child process per deployment, killed past these limits.
        "RENDER_TIME_LIMIT_SECONDS": 5.0,  # wall-clock time of all of one deployment's
        "RENDER_MEMORY_MB": 256,  # memory the child may take beyond its interpreter
        # Time limits of the worker's tasks. A deployment fails (and is undone) past its limit,
        # counted from its first attempt; Celery's soft limit follows shortly after as a
        # backstop, and its hard limit (the task's process is killed) after that.
        "DEPLOY_TIME_LIMIT_SECONDS": 1800.0,
        "TEARDOWN_TIME_LIMIT_SECONDS": 600.0,
        "ACTION_TIME_LIMIT_SECONDS": 900.0,  # a package action's own timeout is at most 10 min
        # Quotas of one tenant, whatever its packages ask for.
        "TENANT_MAX_ENVIRONMENTS": 100,
        "TENANT_MAX_PUBLISHED_PORTS": 200,  # host ports its running environments hold
    }


# Setting name -> how to read its CATALOG_<NAME> variable.
CONVERTERS: dict[str, Callable[[str], Any]] = {
    "DATABASE_URL": str,
    "BROKER_URL": str,
    "DOCKER_URL": str,
    "BLOB_DIR": str,
    "MAX_UPLOAD_BYTES": int,
    "UPLOAD_RATE_LIMIT": str,
    "READ_RATE_LIMIT": str,
    "AUTH_FAILURE_RATE_LIMIT": str,
    "RATELIMIT_STORAGE_URL": str,
    "STREAMS_PER_PROCESS": int,
    "STREAMS_PER_TOKEN": int,
    "DB_POOL_SIZE": int,
    "LOG_LEVEL": str,
    "HOST_PORT_RANGE": str,
    "NETWORK_POOL": str,
    "NETWORK_PREFIX": lambda v: int(v.removeprefix("/")),
    "MIN_RUNNING_SECONDS": float,
    "ALLOW_PULL": lambda v: v.lower() in ("1", "true", "yes", "on"),
    "REGISTRIES": str,
    "DOCKER_TLS_DIR": str,
    "DEPLOY_PARALLELISM": int,
    "MAX_ACTIVE_DEPLOYS": int,
    "RESYNC_SECONDS": float,
    "RESYNC_STALE_SECONDS": float,
    "PRUNE_IMAGES_SECONDS": float,
    "LEASE_SECONDS": float,
    "TASK_QUEUE": str,
    "HOST_NAME": str,
    "LOG_BUDGET_BYTES": int,
    "LOG_SHARE_BYTES": int,
    "PUBLIC_HOST": str,
    "CRASHLOOP_DEATHS": int,
    "CRASHLOOP_WINDOW_SECONDS": float,
    "RESTART_BACKOFF_SECONDS": float,
    "RESTART_BACKOFF_MAX_SECONDS": float,
    "TRACKER_QUEUE_SIZE": int,
    "TRACKER_RELIST_SECONDS": float,
    "TRACKER_RECONNECT_MAX_SECONDS": float,
    "TRACKER_REPAIR_WORKERS": int,
    "SECRET_KEY": str,
    "SECRET_KEY_FILE": str,
    "RENDER_TIME_LIMIT_SECONDS": float,
    "RENDER_MEMORY_MB": int,
    "DEPLOY_TIME_LIMIT_SECONDS": float,
    "TEARDOWN_TIME_LIMIT_SECONDS": float,
    "ACTION_TIME_LIMIT_SECONDS": float,
    "TENANT_MAX_ENVIRONMENTS": int,
    "TENANT_MAX_PUBLISHED_PORTS": int,
}


# Settings an empty variable sets (to "", which turns them off) rather than leaves unset.
EMPTY_MEANS_OFF = frozenset({"NETWORK_POOL"})


def from_environ(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Settings given by `CATALOG_<NAME>` variables, converted to their types."""
    settings: dict[str, Any] = {}
    for name, convert in CONVERTERS.items():
        value = environ.get(f"CATALOG_{name}")
        if value is None or (value == "" and name not in EMPTY_MEANS_OFF):
            continue
        try:
            settings[name] = convert(value)
        except ValueError as exc:
            raise ValueError(f"CATALOG_{name}={value!r}: {exc}") from None
    return settings


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


def secret_keys(settings: Mapping[str, Any]) -> str:
    """The text of the secret keys: SECRET_KEY, else the SECRET_KEY_FILE's content if it
    exists, else "" (no key)."""
    if settings.get("SECRET_KEY"):
        return settings["SECRET_KEY"]
    path = Path(settings.get("SECRET_KEY_FILE") or "")
    if settings.get("SECRET_KEY_FILE") and path.is_file():
        return path.read_text()
    return ""


def check_render_limits(seconds: float, memory_mb: int) -> None:
    """Refuse render limits no template could render within."""
    if not 0 < seconds <= 3600:
        raise ValueError(f"CATALOG_RENDER_TIME_LIMIT_SECONDS={seconds}: must lie in (0, 3600]")
    if memory_mb < 16:
        raise ValueError(f"CATALOG_RENDER_MEMORY_MB={memory_mb}: must be at least 16")


def load(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Defaults overlaid with the environment."""
    settings = {**defaults(environ), **from_environ(environ)}
    check_network_pool(settings["NETWORK_POOL"], settings["NETWORK_PREFIX"])
    check_render_limits(settings["RENDER_TIME_LIMIT_SECONDS"], settings["RENDER_MEMORY_MB"])
    return settings
