"""Waiting for a new container to prove ready: its healthcheck passes, or it keeps running.

The wait is derived from the healthcheck (start period + retries x (interval +
timeout)), not a fixed timer. http and tcp checks are probed from the worker
against the container's address on the environment network; command checks are
the engine's own.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from packages.container import parse_duration, readiness_timeout
from workers.engine import Engine

POLL_SECONDS = 0.1


class NotReady(Exception):
    """The container did not become ready; the message says why."""


class Interrupted(Exception):
    """Waiting stopped because the deployment was cancelled or the lease was lost."""


def _state_problem(state: Mapping[str, Any]) -> str | None:
    if state.get("Running"):
        return None
    reason = f"exited with code {state.get('ExitCode')}"
    if state.get("OOMKilled"):
        reason += " (killed: out of memory)"
    if state.get("Error"):
        reason += f": {state['Error']}"
    return reason


def _address(info: Mapping[str, Any], network: str) -> str | None:
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    return (networks.get(network) or {}).get("IPAddress") or None


def probe_http(host: str, port: int, path: str, timeout: float) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path or "/")
        return 200 <= connection.getresponse().status < 400
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def probe_tcp(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _probe(check: Mapping[str, Any], info: Mapping[str, Any], network: str) -> bool | None:
    """True healthy, False unhealthy for good, None not yet."""
    if "command" in check:
        status = ((info.get("State") or {}).get("Health") or {}).get("Status")
        return {"healthy": True, "unhealthy": False}.get(status or "")
    host = _address(info, network)
    if host is None:
        return None
    timeout = min(parse_duration(check.get("timeout", "1s")), 2.0)
    if "http" in check:
        return (
            probe_http(host, check["http"]["port"], check["http"].get("path", "/"), timeout) or None
        )
    return probe_tcp(host, check["tcp"]["port"], timeout) or None


def wait_ready(
    engine: Engine,
    container_id: str,
    service: Mapping[str, Any],
    network: str,
    *,
    min_running: float,
    interrupted: Callable[[], str | None] = lambda: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Block until ready; returns the seconds it took. NotReady or Interrupted otherwise."""
    check = service.get("healthcheck")
    if check is None:
        return _wait_running(engine, container_id, min_running, interrupted, clock, sleep)
    started = clock()
    window = readiness_timeout(service)
    deadline = started + window
    while True:
        reason = interrupted()
        if reason:
            raise Interrupted(reason)
        info = engine.inspect(container_id)
        if info is None:
            raise NotReady("the container disappeared")
        problem = _state_problem(info.get("State") or {})
        if problem:
            raise NotReady(problem)
        now = clock()
        healthy = _probe(check, info, network)
        if healthy:
            return now - started
        if healthy is False:
            raise NotReady("the healthcheck reported unhealthy")
        if now >= deadline:
            raise NotReady(f"not ready within {window:.1f} s (healthcheck window)")
        sleep(min(POLL_SECONDS, max(deadline - clock(), 0.0)))


def _wait_running(
    engine: Engine,
    container_id: str,
    min_running: float,
    interrupted: Callable[[], str | None],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> float:
    """Ready once the same run of the container has lasted `min_running` seconds.

    Two inspects instead of polling: one now (an early exit fails at once), one when the
    window ends, which must find it running with the same start time (no exit and restart
    in between; the engine restarts nothing itself). Cancel and lease loss are still
    noticed within POLL_SECONDS while waiting.
    """
    started = clock()
    first = _running_state(engine, container_id)
    deadline = started + min_running
    while (left := deadline - clock()) > 0:
        reason = interrupted()
        if reason:
            raise Interrupted(reason)
        sleep(min(POLL_SECONDS, left))
    reason = interrupted()
    if reason:
        raise Interrupted(reason)
    last = _running_state(engine, container_id)
    if last.get("StartedAt") != first.get("StartedAt"):
        raise NotReady("the container exited and was restarted within its minimum running time")
    return clock() - started


def _running_state(engine: Engine, container_id: str) -> Mapping[str, Any]:
    info = engine.inspect(container_id)
    if info is None:
        raise NotReady("the container disappeared")
    state = info.get("State") or {}
    problem = _state_problem(state)
    if problem:
        raise NotReady(problem)
    return state
