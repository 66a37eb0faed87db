"""The one place that reads `CATALOG_*` environment variables into settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
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
        "UPLOAD_RATE_LIMIT": "60/minute",
        "RATELIMIT_STORAGE_URL": "memory://",
        "DB_POOL_SIZE": 10,
        "LOG_LEVEL": "INFO",
    }


# Setting name -> how to read its CATALOG_<NAME> variable.
CONVERTERS: dict[str, type] = {
    "DATABASE_URL": str,
    "BROKER_URL": str,
    "DOCKER_URL": str,
    "BLOB_DIR": str,
    "MAX_UPLOAD_BYTES": int,
    "UPLOAD_RATE_LIMIT": str,
    "RATELIMIT_STORAGE_URL": str,
    "DB_POOL_SIZE": int,
    "LOG_LEVEL": str,
}


def from_environ(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Settings given by `CATALOG_<NAME>` variables, converted to their types."""
    settings: dict[str, Any] = {}
    for name, convert in CONVERTERS.items():
        value = environ.get(f"CATALOG_{name}")
        if value is not None and value != "":
            try:
                settings[name] = convert(value)
            except ValueError as exc:
                raise ValueError(f"CATALOG_{name}={value!r}: {exc}") from None
    return settings


def load(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Defaults overlaid with the environment."""
    return {**defaults(environ), **from_environ(environ)}
