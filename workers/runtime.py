"""The worker process's shared runtime: one engine client, one database pool."""

from __future__ import annotations

import logging
import os
import socket
import threading
from functools import cache

from sqlalchemy import text
from sqlalchemy.orm import configure_mappers

from catalog import config as catalog_config
from catalog.db import make_engine, make_sessionmaker
from catalog.services.blobs import BlobStore
from workers.deploy import Runtime
from workers.driver import Driver, connect

log = logging.getLogger(__name__)


@cache
def _shared() -> tuple[dict, object, Driver, BlobStore]:
    settings = catalog_config.load()
    sessions = make_sessionmaker(make_engine(settings["DATABASE_URL"], pool_size=4))
    driver = Driver(connect(settings["DOCKER_URL"]))
    return settings, sessions, driver, BlobStore(settings["BLOB_DIR"])


def runtime() -> Runtime:
    settings, sessions, driver, blobs = _shared()
    owner = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    return Runtime(
        sessions=sessions, driver=driver, blob_path=blobs.path_for, settings=settings, owner=owner
    )


def warm_up() -> None:
    """Connect to the engine and the database now rather than in the first task.

    Run as each pool process starts: the first deployment would otherwise pay for the
    database dialect's imports, both connections and the ORM's mapper configuration
    (~0.3-0.5 s). A failure is only logged; the first task connects again and reports it.
    """
    try:
        configure_mappers()
        _settings, sessions, _driver, _blobs = _shared()
        with sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("warm-up failed (the first task will retry): %s", exc)
