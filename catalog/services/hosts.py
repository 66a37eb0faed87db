"""Docker hosts (admin) and where new environments are placed.

With no host registered, every environment runs on the default engine, served by the
workers and the tracker started without a host name. Once hosts are registered, a new
environment goes to the host it names, or to the enabled host with the fewest environments;
it stays there. Its deployments, teardown and actions are published to that host's queue,
its endpoints show that host's public address, and the API reads its logs from that host's
engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.auth import Principal, require_role
from catalog.errors import Conflict, NotFound
from catalog.models import Environment, Host
from catalog.services import audit
from catalog.services.environment_checks import invalid
from catalog.services.lookup import commit_or_conflict

FIELDS = ("public_host", "docker_url", "enabled")
# TLS client files the API presents to an engine on tcp:// (Docker's DOCKER_CERT_PATH names).
TLS_FILES = ("ca.pem", "cert.pem", "key.pem")


def tls_files(tls_dir: str) -> tuple[str, str, str] | None:
    """The CA, certificate and key under `tls_dir` (CATALOG_DOCKER_TLS_DIR), if all are there."""
    if not tls_dir:
        return None
    paths = tuple(str(Path(tls_dir) / name) for name in TLS_FILES)
    return paths if all(Path(p).is_file() for p in paths) else None  # type: ignore[return-value]


def engine_url_problem(url: str, tls_dir: str) -> str | None:
    """Why the API may not reach an engine at `url`, or None. Plain tcp:// would give root on
    that host to anyone who reaches the port, so tcp:// needs the API's TLS client files."""
    scheme, separator, rest = url.partition("://")
    if not url:
        return None
    if not separator or scheme not in ("ssh", "unix", "tcp") or not rest:
        return "must be ssh://user@host, unix:///path/to/docker.sock or tcp://host:port (TLS)"
    if scheme == "tcp" and tls_files(tls_dir) is None:
        return (
            "plain tcp:// gives root on that host to anyone who reaches the port: give the API "
            f"TLS client files ({', '.join(TLS_FILES)} in CATALOG_DOCKER_TLS_DIR), or use ssh://"
        )
    return None


def _check_engine_url(url: str | None, tls_dir: str) -> None:
    problem = engine_url_problem(url or "", tls_dir)
    if problem:
        raise invalid("docker_url", f"docker_url {problem}")


@dataclass(frozen=True)
class HostView:
    id: str
    name: str
    public_host: str
    docker_url: str
    enabled: bool
    environments: int
    created_at: datetime


def _counts(session: Session, *host_ids: str) -> dict[str, int]:
    """Environments placed on each host (on those given, when some are)."""
    placed = Environment.host_id.in_(host_ids) if host_ids else Environment.host_id.is_not(None)
    query = select(Environment.host_id, func.count()).where(placed).group_by(Environment.host_id)
    # `placed` leaves out the environments on no host.
    return {host: count for host, count in session.execute(query).all() if host is not None}


def _view(host: Host, counts: dict[str, int]) -> HostView:
    return HostView(
        id=host.id,
        name=host.name,
        public_host=host.public_host,
        docker_url=host.docker_url,
        enabled=host.enabled,
        environments=counts.get(host.id, 0),
        created_at=host.created_at,
    )


def _get(session: Session, name: str, *, lock: bool = False) -> Host:
    query = select(Host).where(Host.name == name)
    host = session.scalar(query.with_for_update() if lock else query)
    if host is None:
        raise NotFound(f"no host {name!r}")
    return host


def add_host(
    session: Session, principal: Principal, body: dict[str, Any], *, tls_dir: str = ""
) -> HostView:
    require_role(principal, "admin")
    _check_engine_url(body.get("docker_url"), tls_dir)
    taken = f"a host named {body['name']!r} exists already"
    if session.scalar(select(Host.id).where(Host.name == body["name"])):
        raise Conflict(taken)
    host = Host(name=body["name"], **{f: body[f] for f in FIELDS})
    session.add(host)
    session.flush()
    audit.record(session, principal, "host.create", "host", host.id, detail={"name": host.name})
    commit_or_conflict(session, taken)
    return _view(host, {})


def list_hosts(session: Session, principal: Principal) -> list[HostView]:
    require_role(principal, "admin")
    counts = _counts(session)
    return [_view(h, counts) for h in session.scalars(select(Host).order_by(Host.name))]


def show_host(session: Session, principal: Principal, name: str) -> HostView:
    require_role(principal, "admin")
    host = _get(session, name)
    return _view(host, _counts(session, host.id))


def update_host(
    session: Session, principal: Principal, name: str, changes: dict[str, Any], *, tls_dir: str = ""
) -> HostView:
    """Change a host's public address, engine address, or whether it takes new environments."""
    require_role(principal, "admin")
    if "docker_url" in changes:
        _check_engine_url(changes["docker_url"], tls_dir)
    host = _get(session, name)
    changed = sorted(f for f, value in changes.items() if getattr(host, f) != value)
    for field in changed:
        setattr(host, field, changes[field])
    audit.record(
        session, principal, "host.update", "host", host.id,
        detail={"name": host.name, "fields": changed},
    )  # fmt: skip
    session.commit()
    return _view(host, _counts(session, host.id))


def remove_host(session: Session, principal: Principal, name: str) -> None:
    """Unregister a host; refused while environments are placed on it."""
    require_role(principal, "admin")
    host = _get(session, name, lock=True)  # an environment being placed here commits first
    placed = _counts(session, host.id).get(host.id, 0)
    if placed:
        raise Conflict(
            f"host {name!r} runs {placed} environment(s); delete them, or disable the host "
            "so that no new ones are placed on it"
        )
    audit.record(session, principal, "host.delete", "host", host.id, detail={"name": name})
    session.delete(host)
    session.commit()


def place(session: Session, requested: str | None) -> Host | None:
    """The host a new environment goes to: the one named, else the enabled host with the
    fewest environments (by name on a tie), else None (the default engine) when none is
    registered. The hosts are locked until the environment is committed: a host is not
    removed under it, and concurrent placements are counted one after the other (on
    PostgreSQL; SQLite has one writer at a time anyway)."""
    if requested is not None:
        try:
            host = _get(session, requested, lock=True)
        except NotFound as missing:
            raise invalid("host", missing.detail) from None
        if not host.enabled:
            raise invalid("host", f"host {requested!r} takes no new environments (disabled)")
        return host
    hosts = list(
        session.scalars(
            select(Host).where(Host.enabled.is_(True)).order_by(Host.name).with_for_update()
        )
    )
    if not hosts:
        if session.scalar(select(func.count()).select_from(Host)):
            raise Conflict("every registered host is disabled: no host takes new environments")
        return None
    counts = _counts(session, *(h.id for h in hosts))
    return min(hosts, key=lambda h: (counts.get(h.id, 0), h.name))
