"""Host ports for published container ports: from the configured range, stable per port."""

from __future__ import annotations

import socket

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog.models import HostPort
from catalog.services.quotas import Quotas, published_ports_problem


class PortsExhausted(Exception):
    """No free host port is left in the configured range."""


class TenantQuotaExceeded(PortsExhausted):
    """The tenant's environments would hold more host ports than its quota allows."""


def parse_range(text: str) -> range:
    low, _, high = text.partition("-")
    first, last = int(low), int(high or low)
    if not 1024 <= first <= last <= 65535:
        raise ValueError(f"host port range {text!r} must lie within 1024-65535")
    return range(first, last + 1)


def _free_on_host(port: int, protocol: str) -> bool:
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def allocate(
    sessions: sessionmaker[Session],
    env_id: str,
    wanted: list[tuple[str, str, int, str]],
    ports: range,
    *,
    tenant: tuple[str, Quotas] | None = None,
) -> dict[tuple[str, str, int, str], int]:
    """Host ports for (app, service, container_port, protocol); reused when allocated before.

    With `tenant` (its id and quotas), new ports are claimed only while the tenant's
    environments together stay within its published-ports quota (TenantQuotaExceeded
    otherwise); the tenant's row stays locked until they are claimed, so two deployments
    of one tenant cannot both take the last ones.
    """
    allocated: dict[tuple[str, str, int, str], int] = {}
    with sessions() as guard:
        for row in guard.scalars(select(HostPort).where(HostPort.environment_id == env_id)):
            allocated[(row.app, row.service, row.container_port, row.protocol)] = row.port
        missing = [key for key in wanted if key not in allocated]
        if missing and tenant is not None:
            problem = published_ports_problem(guard, tenant[0], env_id, len(wanted), tenant[1])
            if problem:
                raise TenantQuotaExceeded(problem)
        for key in missing:
            allocated[key] = _claim(sessions, env_id, key, ports)
        guard.commit()  # the tenant's row lock goes
    return {key: allocated[key] for key in wanted}


def _claim(sessions, env_id: str, key: tuple[str, str, int, str], ports: range) -> int:
    app, service, container_port, protocol = key
    with sessions() as session:
        taken = set(session.scalars(select(HostPort.port)))
    for port in ports:
        if port in taken or not _free_on_host(port, protocol):
            continue
        with sessions() as session:
            session.add(
                HostPort(
                    port=port,
                    environment_id=env_id,
                    app=app,
                    service=service,
                    container_port=container_port,
                    protocol=protocol,
                )
            )
            try:
                session.commit()
                return port
            except IntegrityError:  # another worker took it first
                session.rollback()
    raise PortsExhausted(f"no free host port left in {ports.start}-{ports.stop - 1}")


def release_orphans(
    sessions: sessionmaker[Session], env_id: str, kept: set[tuple[str, str, int, str]]
) -> None:
    """Forget the ports of container ports no longer published by the current revision."""
    with sessions() as session:
        for row in session.scalars(select(HostPort).where(HostPort.environment_id == env_id)):
            if (row.app, row.service, row.container_port, row.protocol) not in kept:
                session.delete(row)
        session.commit()
