"""How much of a shared engine one package may ask for: counts, durations and file targets.

Each check is a small pure function over the JSON-shaped manifest that yields
`(path, message)` pairs, the path naming the field; values of the wrong type are
left to the schema. `manifest_bounds` runs them all; `files_bytes_problem` needs the
archive's member sizes and runs where the archive is open.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from packages.container import healthcheck_window, parse_duration
from packages.limits import DEFAULT_LIMITS, TIME_BOUNDS, Limits, MiB, TimeBounds

Path = tuple[str | int, ...]
Found = Iterator[tuple[Path, str]]

#: Kernel interfaces a package file or volume must never be written over.
FORBIDDEN_ROOTS = ("/proc", "/sys", "/dev")


def manifest_bounds(
    doc: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS, times: TimeBounds = TIME_BOUNDS
) -> Found:
    """Every bound a manifest breaks, as (path, message)."""
    services = _mapping(doc.get("services"))
    if len(services) > limits.max_services:
        yield ("services",), f"has {len(services)} services; at most {limits.max_services}"
    yield from _published_ports(services, limits)
    yield from _file_counts(services, limits)
    for name, service in services.items():
        if isinstance(service, Mapping):
            yield from _service_times(("services", name), service, times)
            yield from _service_targets(("services", name), service)
    for name, action in _mapping(doc.get("actions")).items():
        if isinstance(action, Mapping):
            yield from _action_timeout(("actions", name, "timeout"), action.get("timeout"), times)


def normalised_target(path: str) -> str:
    """`/./proc`, `//proc/x`, `/a/../proc` -> `/proc...`: the path the container sees."""
    return "/" + posixpath.normpath("/" + path).lstrip("/")


def forbidden_target(path: str) -> str | None:
    """The kernel interface (`/proc`, `/sys`, `/dev`) that `path` lies in, if any."""
    target = normalised_target(path)
    for root in FORBIDDEN_ROOTS:
        if target == root or target.startswith(root + "/"):
            return root
    return None


def files_bytes_problem(
    services: Mapping[str, Any], size_of: Callable[[str], int], limits: Limits = DEFAULT_LIMITS
) -> tuple[Path, str] | None:
    """The first file target at which the bytes all targets receive pass the limit.

    A member named by many targets counts once per target: each is read and held.
    """
    total = 0
    for name, service in _mapping(services).items():
        files = _mapping(service.get("files")) if isinstance(service, Mapping) else {}
        for target, member in files.items():
            total += size_of(member)
            if total > limits.max_files_bytes:
                return ("services", name, "files", target), (
                    f"the package's files add up to more than {limits.max_files_bytes // MiB} MiB"
                    " (a member counts once for each target it is written to)"
                )
    return None


# --- counts ----------------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _published_ports(services: Mapping[str, Any], limits: Limits) -> Found:
    count = 0
    for name, service in services.items():
        ports = service.get("ports") if isinstance(service, Mapping) else None
        for i, port in enumerate(ports if isinstance(ports, list) else ()):
            if isinstance(port, Mapping) and port.get("publish") is True:
                count += 1
                if count == limits.max_published_ports + 1:
                    yield (
                        ("services", name, "ports", i, "publish"),
                        (f"more than {limits.max_published_ports} published ports in the package"),
                    )


def _file_counts(services: Mapping[str, Any], limits: Limits) -> Found:
    total = 0
    for name, service in services.items():
        files = _mapping(service.get("files")) if isinstance(service, Mapping) else {}
        if len(files) > limits.max_service_files:
            yield (
                ("services", name, "files"),
                (f"has {len(files)} targets; at most {limits.max_service_files} per service"),
            )
        total += len(files)
    if total > limits.max_package_files:
        yield (
            ("services",),
            (f"the services have {total} file targets; at most {limits.max_package_files}"),
        )


def _service_targets(base: Path, service: Mapping[str, Any]) -> Found:
    for target in _mapping(service.get("files")):
        if isinstance(target, str) and (root := forbidden_target(target)):
            yield (*base, "files", target), f"must not write under {root}"
    volumes = service.get("volumes")
    for i, volume in enumerate(volumes if isinstance(volumes, list) else ()):
        path = volume.get("path") if isinstance(volume, Mapping) else None
        if isinstance(path, str) and (root := forbidden_target(path)):
            yield (*base, "volumes", i, "path"), f"must not mount over {root}"


# --- durations -------------------------------------------------------------------------------


def _seconds(value: Any) -> float | None:
    """Seconds of a duration string; None when the schema will refuse it anyway."""
    if not isinstance(value, str):
        return None
    try:
        return parse_duration(value)
    except ValueError:
        return None


def _duration_bound(path: Path, value: Any, limit: float) -> Found:
    seconds = _seconds(value)
    if seconds is not None and seconds > limit:
        yield path, f"{value} is longer than the limit of {_text(limit)}"


def _action_timeout(path: Path, value: Any, times: TimeBounds) -> Found:
    if _seconds(value) == 0:
        yield path, "must be longer than 0s"
    yield from _duration_bound(path, value, times.action_timeout)


def _text(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:g}s"


def _service_times(base: Path, service: Mapping[str, Any], times: TimeBounds) -> Found:
    yield from _duration_bound(
        (*base, "stop_grace_period"), service.get("stop_grace_period"), times.stop_grace_period
    )
    check = service.get("healthcheck")
    if not isinstance(check, Mapping):
        return
    path = (*base, "healthcheck")
    for key in ("interval", "timeout"):
        yield from _duration_bound((*path, key), check.get(key), times.healthcheck_interval)
    yield from _duration_bound(
        (*path, "start_period"), check.get("start_period"), times.healthcheck_start_period
    )
    window = readiness_window(check)
    if window is not None and window > times.readiness_window:
        yield (
            path,
            (
                f"start_period + retries x (interval + timeout) is {_text(window)}; "
                f"the readiness window is at most {_text(times.readiness_window)}"
            ),
        )


def readiness_window(check: Mapping[str, Any]) -> float | None:
    """Seconds a healthcheck may take to decide; None when a timing is malformed."""
    try:
        return healthcheck_window(check)
    except (TypeError, ValueError):
        return None  # the schema says what is wrong
