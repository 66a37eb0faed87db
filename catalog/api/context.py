"""Per-request access to the database session, the caller and the blob store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from flask import Response, current_app, g, request, stream_with_context
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from catalog import current_settings
from catalog.auth import Principal, current_principal
from catalog.errors import ServiceUnavailable
from catalog.services.blobs import BlobStore
from catalog.services.quotas import Quotas
from catalog.streams import Slot
from packages.imageref import RegistryPolicy
from packages.limits import DEFAULT_LIMITS, Limits

READ_METHODS = frozenset({"GET", "HEAD"})


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


def principal() -> Principal:
    return current_principal(connection)


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


def engine(host=None):
    """The Docker engine client of `host` (a Host; None: the default engine), created on
    first use: the API only reads logs through it."""
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
    clients = extensions["docker"]
    if url not in clients:
        clients[url] = _connect(url, current_settings().docker_tls_dir, host)
    return clients[url]


def _connect(url: str, tls_dir: str, host=None):
    """A client of the engine at `url` (ssh:// through the machine's own ssh client and its
    keys; tcp:// only with TLS client files, verified; "" the environment's engine)."""
    import docker
    from docker.errors import DockerException
    from docker.tls import TLSConfig

    from catalog.services.hosts import engine_url_problem, tls_files

    problem = engine_url_problem(url, tls_dir) if host is not None else None
    if problem:  # a host registered before the rule, or the TLS files have gone
        raise ServiceUnavailable(f"the engine address of host {host.name!r} {problem}")
    options: dict = {}
    if url.startswith("ssh://"):
        options["use_ssh_client"] = True
    files = tls_files(tls_dir) if url.startswith("tcp://") else None
    if files:
        ca, cert, key = files
        options["tls"] = TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True)
    try:  # the client asks the engine its version
        return docker.DockerClient(base_url=url, **options) if url else docker.from_env()
    except DockerException as exc:
        raise ServiceUnavailable(f"the Docker engine does not answer: {exc}") from None
