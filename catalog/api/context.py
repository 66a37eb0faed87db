"""Per-request access to the database session, the caller and the blob store.

The one place that reads the caller's token from the request: services get the Principal
as an argument.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from flask import Response, current_app, g, request, stream_with_context
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from catalog import current_settings
from catalog.auth import Principal, authenticate
from catalog.errors import ServiceUnavailable, Unauthorized
from catalog.httplimits import QUERY_CREDENTIALS
from catalog.services.blobs import BlobStore
from catalog.services.quotas import Quotas
from catalog.streams import Slot
from packages.imageref import RegistryPolicy
from packages.limits import DEFAULT_LIMITS, Limits
from workers.engine import Engine, EngineError

if TYPE_CHECKING:
    from catalog.models import Host

READ_METHODS = frozenset({"GET", "HEAD"})
# What answers without a token: liveness and the OpenAPI document.
PUBLIC_ENDPOINTS = frozenset({"health.health"})
PUBLIC_BLUEPRINTS = frozenset({"api-docs"})
METRICS_ENDPOINT = "health.metrics"


def db() -> Session:
    """The request's session: without a transaction for reads, which change nothing (on
    the request's read connection)."""
    if "db" not in g:
        extensions = current_app.extensions["catalog"]
        if request.method in READ_METHODS:
            g.db = extensions["read_sessionmaker"](bind=connection())
        else:
            g.db = extensions["sessionmaker"]()
    return g.db


def connection() -> Connection:
    """The request's database connection: for reads one of the read pool's, without a
    session until a view asks for one (the token lookup and the hot listings need none);
    for writes, the session's."""
    if request.method not in READ_METHODS:
        return db().connection()
    if "read_connection" not in g:
        g.read_connection = current_app.extensions["catalog"]["read_engine"].connect()
    return g.read_connection


def package_limits() -> Limits:
    """The limits an upload is checked against, with the registries of CATALOG_REGISTRIES."""
    policy = RegistryPolicy.from_setting(current_settings().registries)
    return replace(DEFAULT_LIMITS, registries=policy)


def quotas() -> Quotas:
    """The tenant quotas of this installation (CATALOG_TENANT_*)."""
    return Quotas.from_settings(current_settings())


def bearer_secret() -> str | None:
    """The secret of the Authorization header, or None when there is no header."""
    if any(name in request.args for name in QUERY_CREDENTIALS):
        raise Unauthorized("tokens are accepted only in the Authorization header")
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return secret.strip()


def principal() -> Principal:
    """The authenticated caller of this request (cached on `g`); Unauthorized if none."""
    if "principal" not in g:
        secret = bearer_secret()
        if secret is None:
            raise Unauthorized()
        g.principal = authenticate(connection(), secret)
    return g.principal


def authenticate_request() -> None:
    """Before-request hook: every route but the public ones needs a valid token.

    It runs before a view parses its arguments, so an anonymous caller, or one with a
    token in the query string, gets 401 whatever its body or query says (never a 400
    describing what the route would accept). Unrouted requests keep their 404/405.
    """
    if (
        request.endpoint is None
        or request.method == "OPTIONS"
        or request.endpoint in PUBLIC_ENDPOINTS
        or request.blueprint in PUBLIC_BLUEPRINTS
    ):
        return
    if request.endpoint == METRICS_ENDPOINT and is_metrics_scraper():
        return
    principal()


def is_metrics_scraper() -> bool:
    """Whether the request carries CATALOG_METRICS_TOKEN (which reads the metrics only)."""
    if "metrics_scraper" not in g:
        expected = current_settings().metrics_token
        secret = bearer_secret() if expected else None
        g.metrics_scraper = secret is not None and hmac.compare_digest(
            secret.encode(), expected.encode()
        )
    return g.metrics_scraper


def blobs() -> BlobStore:
    return current_app.extensions["catalog"]["blobs"]


def close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
    read_connection = g.pop("read_connection", None)
    if read_connection is not None:
        read_connection.close()


def stream(chunks: Callable[[Slot], Iterator], mimetype: str, headers: dict[str, str]) -> Response:
    """A `follow=1` response in one of the caller's stream slots (429 when none is free).

    `chunks(slot)` makes the body; it polls `slot.alive()` to end when the client has gone.
    The slot is given back when the server closes the response, however the stream ended.
    """
    slot = current_app.extensions["catalog"]["streams"].open(principal().token_id, request.environ)
    try:
        response = Response(stream_with_context(chunks(slot)), mimetype=mimetype, headers=headers)
    except BaseException:
        slot.release()
        raise
    response.call_on_close(slot.release)
    return response


def publisher():
    return current_app.extensions["catalog"]["publisher"]


def engine(host: Host | None = None) -> Engine:
    """The container engine of `host` (None: the default engine), connected on first use:
    the API only reads logs through it."""
    extensions = current_app.extensions["catalog"]
    if host is None:
        url = current_settings().docker_url
    elif host.docker_url:
        url = host.docker_url
    else:
        raise ServiceUnavailable(
            f"the API does not know the engine address of host {host.name!r}: "
            f"`catalogctl admin host update {host.name} --docker-url URL`"
        )
    engines = extensions["docker"]
    if url not in engines:
        engines[url] = _connect(url, current_settings().docker_tls_dir, host)
    return engines[url]


def _connect(url: str, tls_dir: str, host: Host | None = None) -> Engine:
    """The engine at `url` (ssh:// through the machine's own ssh client and its keys;
    tcp:// only with TLS client files, verified; "" the environment's engine)."""
    from catalog.services.hosts import engine_url_problem, tls_files
    from workers.engine.docker import connect

    # A host registered before the rule, or the TLS files have gone:
    if host is not None and (problem := engine_url_problem(url, tls_dir)):
        raise ServiceUnavailable(f"the engine address of host {host.name!r} {problem}")
    files = tls_files(tls_dir) if url.startswith("tcp://") else None
    try:  # connecting asks the engine its version
        return connect(url, ping=False, ssh_client=url.startswith("ssh://"), tls=files or None)
    except EngineError as exc:
        raise ServiceUnavailable(str(exc)) from None
