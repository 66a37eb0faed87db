"""The worker process's shared runtime: one engine client, one database pool."""

from __future__ import annotations

import os
import socket
import threading
from functools import cache

from catalog import config as catalog_config
from catalog.db import make_engine, make_sessionmaker
from catalog.services.blobs import BlobStore
from workers.deploy import Runtime
from workers.driver import Driver, connect


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
