"""The worker process's shared runtime: one engine client, one database pool, the settings."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from ipaddress import IPv4Network
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, configure_mappers, sessionmaker

from catalog import config as catalog_config
from catalog.config import Settings
from catalog.db import make_engine, make_sessionmaker
from catalog.models import Host
from catalog.secretbox import SecretBox, box_from
from catalog.services.blobs import BlobStore
from packages.container import RuntimeDefaults
from packages.render_process import RenderLimits, start_spare
from workers.engine import Engine
from workers.engine.docker import connect

log = logging.getLogger(__name__)

DEPLOY_TIME_LIMIT = 1800.0  # the default of CATALOG_DEPLOY_TIME_LIMIT_SECONDS


@dataclass
class Runtime:
    """What a worker needs to deploy: database, engine, blob store and settings."""

    sessions: sessionmaker[Session]
    engine: Engine
    blob_path: Callable[[str], Any]
    settings: Settings
    owner: str
    defaults: RuntimeDefaults = field(default_factory=RuntimeDefaults)
    # The registered host whose engine `engine` drives (the tracker's); None: the default one.
    host_id: str | None = None
    # Opens the secret parameters of a snapshot, only to build its containers.
    secrets: SecretBox = field(default_factory=SecretBox)


def network_pool(rt: Runtime) -> tuple[IPv4Network | None, int]:
    """Where environment networks take their subnets (CATALOG_NETWORK_POOL), and their prefix.

    No pool: the engine's default address pools choose.
    """
    pool = rt.settings.network_pool
    return (IPv4Network(pool) if pool else None), rt.settings.network_prefix


def lease_seconds(rt: Runtime) -> float:
    """How long an environment lease lasts unless renewed (CATALOG_LEASE_SECONDS)."""
    return float(rt.settings.lease_seconds)


def deploy_time_limit(rt: Runtime) -> float:
    """Seconds one deployment may take over all its attempts (CATALOG_DEPLOY_TIME_LIMIT_SECONDS)."""
    return float(rt.settings.deploy_time_limit_seconds)


class UnknownHost(RuntimeError):
    """HOST_NAME names no registered host."""


def host_id(sessions, name: str | None) -> str | None:
    """The id of the registered host `name` (None: the default engine); UnknownHost else."""
    if not name:
        return None
    with sessions() as session:
        found = session.scalar(select(Host.id).where(Host.name == name))
    if found is None:
        raise UnknownHost(
            f"no registered host {name!r}: `catalogctl admin host add {name} ...` first"
        )
    return found


@cache
def _shared() -> tuple[Settings, sessionmaker[Session], Engine, BlobStore]:
    settings = catalog_config.current()
    secrets = box_from(settings)
    sessions = make_sessionmaker(make_engine(settings.database_url, pool_size=4), secrets)
    engine = connect(settings.docker_url)
    return settings, sessions, engine, BlobStore(settings.blob_dir)


def runtime() -> Runtime:
    """What a task or the tracker works with: settings, database, engine and blobs."""
    settings, sessions, engine, blobs = _shared()
    owner = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    return Runtime(
        sessions=sessions, engine=engine, blob_path=blobs.path_for, settings=settings,
        owner=owner, secrets=sessions.kw["info"]["secrets"],
    )  # fmt: skip


def warm_up() -> None:
    """Connect to the engine and the database now rather than in the first task.

    Run as each pool process starts: the first deployment would otherwise pay for the
    database dialect's imports, both connections and the ORM's mapper configuration
    (~0.3-0.5 s), and for a render child's start. A failure is only logged; the first
    task connects again and reports it.
    """
    try:
        configure_mappers()
        settings, sessions, _engine, _blobs = _shared()
        with sessions() as session:
            session.execute(text("SELECT 1"))
        start_spare(RenderLimits.from_settings(settings))  # the first render needs no start
    except Exception as exc:
        log.warning("warm-up failed (the first task will retry): %s", exc)
