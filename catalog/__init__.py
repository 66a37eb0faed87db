"""The catalog service: HTTP API, database models and domain services."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, current_app

from catalog import config as catalog_config
from catalog import logformat
from catalog.config import Settings

API_TITLE = "Container Catalog"
API_VERSION = "v1"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Defaults, then `CATALOG_*` variables, then the test override (setting names, and
    Flask's own keys)."""
    from catalog.api import register_blueprints
    from catalog.api.audit import record_refused_write
    from catalog.api.context import close_session
    from catalog.api.docs import Api
    from catalog.api.inputs import refuse_unstorable_text
    from catalog.db import make_engine, make_sessionmaker
    from catalog.errors import UPLOAD_SLACK, register_error_handlers
    from catalog.jsonprovider import OrjsonProvider
    from catalog.queue import Publisher, make_celery
    from catalog.ratelimit import limiter
    from catalog.secretbox import box_from
    from catalog.services.blobs import BlobStore
    from catalog.streams import Streams

    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    overrides = dict(test_config or {})
    flask_keys = {k: overrides.pop(k) for k in list(overrides) if k not in catalog_config.NAMES}
    settings = catalog_config.load(overrides=overrides)
    app.config.from_mapping(flask_keys)
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/v1",
        OPENAPI_JSON_PATH="openapi.json",
        # Room for multipart framing around the largest accepted archive.
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + UPLOAD_SLACK,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_url,
        RATELIMIT_HEADERS_ENABLED=True,
    )
    logformat.configure(settings.log_level, settings.log_format, process="api")
    secrets = box_from(settings)
    if not secrets.ready:
        logging.getLogger(__name__).warning(
            "CATALOG_SECRET_KEY is not set: apps with secret parameters cannot be stored"
        )

    engine = make_engine(settings.database_url, settings.db_pool_size)
    # Reads (GET, HEAD) change nothing: no transaction, so no BEGIN and ROLLBACK round trips.
    read_engine = make_engine(settings.database_url, settings.db_pool_size, autocommit=True)
    app.extensions["catalog"] = {
        "settings": settings,
        "engine": engine,
        "read_engine": read_engine,
        "sessionmaker": make_sessionmaker(engine, secrets),
        "read_sessionmaker": make_sessionmaker(read_engine, secrets),
        "blobs": BlobStore(settings.blob_dir),
        "publisher": Publisher(make_celery(settings)),
        "docker": {},  # engine clients by address, made on first use (catalog.api.context)
        "streams": Streams.from_settings(settings),
    }
    app.teardown_appcontext(close_session)
    # Every request is timed and counted, refused ones too; refused writes are audited.
    app.before_request(_start_timing)
    app.after_request(_observe)
    app.after_request(record_refused_write)
    app.teardown_request(_forget_request_id)
    # Authentication runs before any view parses its arguments (401 before 400).
    app.before_request(_authenticate)
    app.before_request(refuse_unstorable_text)

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


def settings_of(app: Flask) -> Settings:
    """The settings `create_app` built the app with."""
    return app.extensions["catalog"]["settings"]


def current_settings() -> Settings:
    """The settings of the app handling the request (or of the app context)."""
    return settings_of(current_app)


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


def _start_timing() -> None:
    from flask import g, request

    g.started = time.perf_counter()
    g.request_id = logformat.request_id_from(request.headers.get("X-Request-Id"))
    g.request_id_token = logformat.REQUEST_ID.set(g.request_id)


def _forget_request_id(_exc: BaseException | None = None) -> None:
    from flask import g

    token = g.pop("request_id_token", None)
    if token is not None:
        logformat.REQUEST_ID.reset(token)


def _observe(response):
    """Count the request and its time, by route template (catalog/metrics.py)."""
    from flask import g, request

    from catalog.metrics import observe_request

    started = g.get("started")
    if started is not None:
        method = request.method if request.method in _METHODS else "OTHER"
        route = request.url_rule.rule if request.url_rule is not None else None
        observe_request(method, route, response.status_code, time.perf_counter() - started)
    if "request_id" in g:
        response.headers["X-Request-Id"] = g.request_id
    return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"})
