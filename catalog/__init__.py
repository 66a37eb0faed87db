"""The catalog service: HTTP API, database models and domain services."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from catalog import config as catalog_config

API_TITLE = "Container Catalog"
API_VERSION = "v1"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Defaults, then `CATALOG_*` variables, then the test override."""
    from catalog.api import register_blueprints
    from catalog.api.context import close_session
    from catalog.api.docs import Api
    from catalog.api.inputs import refuse_unstorable_text
    from catalog.db import make_engine, make_sessionmaker
    from catalog.errors import register_error_handlers
    from catalog.jsonprovider import OrjsonProvider
    from catalog.queue import Publisher, make_celery
    from catalog.ratelimit import limiter
    from catalog.secretbox import box_from
    from catalog.services.blobs import BlobStore
    from catalog.services.metrics import count_request
    from catalog.streams import Streams

    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    app.config.from_mapping(catalog_config.load())
    if test_config:
        app.config.from_mapping(test_config)
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/v1",
        OPENAPI_JSON_PATH="openapi.json",
        # Room for multipart framing around the largest accepted archive.
        MAX_CONTENT_LENGTH=app.config["MAX_UPLOAD_BYTES"] + 64 * 1024,
        RATELIMIT_STORAGE_URI=app.config["RATELIMIT_STORAGE_URL"],
        RATELIMIT_HEADERS_ENABLED=True,
    )
    logging.basicConfig(level=app.config["LOG_LEVEL"])
    secrets = box_from(app.config)
    if not secrets.ready:
        logging.getLogger(__name__).warning(
            "CATALOG_SECRET_KEY is not set: apps with secret parameters cannot be stored"
        )

    engine = make_engine(app.config["DATABASE_URL"], app.config["DB_POOL_SIZE"])
    # Reads (GET, HEAD) change nothing: no transaction, so no BEGIN and ROLLBACK round trips.
    read_engine = make_engine(
        app.config["DATABASE_URL"], app.config["DB_POOL_SIZE"], autocommit=True
    )
    app.extensions["catalog"] = {
        "engine": engine,
        "read_engine": read_engine,
        "sessionmaker": make_sessionmaker(engine, secrets),
        "read_sessionmaker": make_sessionmaker(read_engine, secrets),
        "blobs": BlobStore(app.config["BLOB_DIR"]),
        "publisher": Publisher(make_celery(app.config)),
        "docker": {},  # engine clients by address, made on first use (catalog.api.context)
        "streams": Streams.from_config(app.config),
    }
    app.teardown_appcontext(close_session)
    # Authentication runs before any view parses its arguments (401 before 400).
    app.before_request(_authenticate)
    app.before_request(refuse_unstorable_text)

    @app.after_request
    def _count(response):
        count_request(_method_label(), response.status_code)
        return response

    api = Api(app, spec_kwargs={"info": {"description": "Application catalog for containers"}})
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearer": []}]
    register_blueprints(api)
    app.extensions["catalog"]["api"] = api
    register_error_handlers(app)
    _wire_services()
    # Its check is a before-request hook too, registered after authentication: every limit is
    # counted on the token the request authenticated with (catalog/ratelimit.py).
    limiter.init_app(app)
    return app


def _wire_services() -> None:
    """The packages service refuses deleting what environments use: it learns how here, so
    it needs to know nothing of environments."""
    from catalog.services import packages
    from catalog.services.environment_checks import package_in_use

    if package_in_use not in packages.IN_USE_CHECKS:
        packages.IN_USE_CHECKS.append(package_in_use)


def _authenticate() -> None:
    """Authentication, with a failed one counted against the caller's address."""
    from catalog.api.context import authenticate_request
    from catalog.errors import Unauthorized
    from catalog.ratelimit import count_failed_authentication

    try:
        authenticate_request()
    except Unauthorized:
        count_failed_authentication()
        raise


def _method_label() -> str:
    from flask import request

    return (
        request.method if request.method in ("GET", "POST", "PATCH", "PUT", "DELETE") else "OTHER"
    )
