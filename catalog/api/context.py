"""Per-request access to the database session, the caller and the blob store."""

from __future__ import annotations

from flask import current_app, g, request
from sqlalchemy.orm import Session

from catalog.auth import Principal, current_principal
from catalog.errors import ServiceUnavailable
from catalog.services.blobs import BlobStore

READ_METHODS = frozenset({"GET", "HEAD"})


def db() -> Session:
    """The request's session: without a transaction for reads, which change nothing."""
    if "db" not in g:
        kind = "read_sessionmaker" if request.method in READ_METHODS else "sessionmaker"
        g.db = current_app.extensions["catalog"][kind]()
    return g.db


def principal() -> Principal:
    return current_principal(db())


def blobs() -> BlobStore:
    return current_app.extensions["catalog"]["blobs"]


def close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def publisher():
    return current_app.extensions["catalog"]["publisher"]


def engine():
    """The Docker engine client (created on first use; the API only reads logs through it)."""
    extensions = current_app.extensions["catalog"]
    if extensions.get("docker") is None:
        import docker
        from docker.errors import DockerException

        url = current_app.config["DOCKER_URL"]
        try:
            extensions["docker"] = docker.DockerClient(base_url=url) if url else docker.from_env()
        except DockerException as exc:  # the client asks the engine its version
            raise ServiceUnavailable(f"the Docker engine does not answer: {exc}") from None
    return extensions["docker"]
