"""One Compose service made into a catalog service, with a report line per conversion.

What the catalog's container policy forbids is refused naming its Compose path, or dropped
with a line when the import was asked to drop what is unsafe; what the catalog manages itself
(restarts, names, networks, labels, logging) is dropped with a line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from packages.importers import is_secret_name
from packages.importers.compose_context import MAX_COPIED_FILE, Context, inside
from packages.importers.compose_mounts import mounts, secret_files
from packages.importers.compose_values import (
    Port,
    ValueProblem,
    duration,
    long_port,
    read_dotenv,
    short_port,
    size,
)
from packages.problems import Path as KeyPath

# Keys the catalog manages or has no equivalent of: dropped, with why.
DROPPED = {
    "restart": "restarts are managed by the catalog",
    "container_name": "container names are assigned by the catalog",
    "hostname": "hostnames are assigned by the catalog: services.<name>.hostname",
    "domainname": "hostnames are assigned by the catalog",
    "labels": "labels are owned by the catalog",
    "label_file": "labels are owned by the catalog",
    "networks": "every service joins its environment's network",
    "links": "services reach each other by services.<name>.hostname",
    "external_links": "services reach each other by services.<name>.hostname",
    "logging": "logs are kept by the catalog",
    "cap_drop": "the catalog drops every capability",
    "scale": "one container per service",
    "cgroup": "cgroups are managed by the catalog",
    "oom_score_adj": "the catalog sets no OOM score",
}
IGNORED = frozenset(
    {
        "annotations",
        "attach",
        "blkio_config",
        "cpu_count",
        "cpu_percent",
        "cpu_period",
        "cpu_quota",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "cpu_shares",
        "cpuset",
        "credential_spec",
        "develop",
        "dns",
        "dns_opt",
        "dns_search",
        "extra_hosts",
        "group_add",
        "init",
        "isolation",
        "mac_address",
        "mem_reservation",
        "mem_swappiness",
        "memswap_limit",
        "models",
        "oom_kill_disable",
        "platform",
        "post_start",
        "pre_stop",
        "provider",
        "pull_refresh_after",
        "read_only",
        "runtime",
        "shm_size",
        "stdin_open",
        "stop_signal",
        "storage_opt",
        "tmpfs",
        "tty",
        "ulimits",
    }
)
# Keys that would weaken isolation whatever their value (when set at all).
UNSAFE = {
    "privileged": "privileged mode is not allowed",
    "cap_add": "adding capabilities is not allowed",
    "devices": "devices are not allowed",
    "device_cgroup_rules": "devices are not allowed",
    "gpus": "devices are not allowed",
    "sysctls": "sysctls are not allowed",
    "volumes_from": "sharing another container's volumes is not allowed",
    "use_api_socket": "access to the engine's API is not allowed",
    "cgroup_parent": "cgroups are managed by the catalog",
}
# Keys naming a namespace: `host` or another container's is refused; a private one dropped.
NAMESPACES = ("network_mode", "pid", "ipc", "uts", "userns_mode")
_PRIVATE_NAMESPACE = ("", "bridge", "default", "none", "private", "shareable")
# Compose's pull policies the catalog's match (`build` and `daily`... have no equivalent).
_PULL_POLICIES = {"always": "always", "never": "never", "missing": "if_not_present",
                  "if_not_present": "if_not_present"}  # fmt: skip
_HOST_KEY = re.compile(r"HOST|SERVER|ADDR|ENDPOINT|BROKER|UR[LI]$", re.IGNORECASE)
_UNSAFE_SECURITY = re.compile(r"unconfined|label[:=]disable|systempaths", re.IGNORECASE)


def convert_service(ctx: Context, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The catalog service for Compose service `name`."""
    base: KeyPath = ("services", name)
    out: dict[str, Any] = {}
    _policy(ctx, base, spec)
    image = spec.get("image")
    if not isinstance(image, str):
        ctx.found.add((*base, "build") if "build" in spec else (*base, "image"),
                      "a package needs an image: build one and name it with image")  # fmt: skip
    else:
        resolved, unknown = ctx.params.resolve(image)
        if resolved is None:
            ctx.found.add(
                (*base, "image"), f"${{{unknown[0]}}} has no default: the image must be known"
            )
        out["image"] = resolved
        if "build" in spec:
            ctx.note((*base, "build"), "dropped: the catalog runs the image, it does not build")
    for key in ("command", "entrypoint"):
        if key in spec and spec[key] is not None:
            value = spec[key]
            out[key] = (
                [ctx.template(v, (*base, key, i)) for i, v in enumerate(value)]
                if isinstance(value, list)
                else ctx.template(value, (*base, key))
            )
    if environment := _environment(ctx, base, spec):
        out["environment"] = environment
    if ports := _ports(ctx, base, spec):
        out["ports"] = ports
    volumes, files = mounts(ctx, base, name, spec)
    files.update(secret_files(ctx, base, spec))
    if volumes:
        out["volumes"] = volumes
    if files:
        out["files"] = files
    if (check := _healthcheck(ctx, base, spec.get("healthcheck"))) is not None:
        out["healthcheck"] = check
    if depends := _depends_on(ctx, base, spec.get("depends_on")):
        out["depends_on"] = depends
    if resources := _resources(ctx, base, spec):
        out["resources"] = resources
    if spec.get("user") is not None:
        out["user"] = ctx.template(spec["user"], (*base, "user"))
    if isinstance(spec.get("working_dir"), str):
        resolved, _ = ctx.params.resolve(spec["working_dir"])
        if resolved is None:
            ctx.found.add((*base, "working_dir"), "must be known: a variable without a default")
        out["working_dir"] = resolved
    policy = _PULL_POLICIES.get(str(spec.get("pull_policy")))
    if policy:
        out["pull_policy"] = policy
    elif spec.get("pull_policy") is not None:
        ctx.note((*base, "pull_policy"), "dropped: the image is pulled when the engine lacks it")
    if spec.get("stop_grace_period") is not None:
        _convert(ctx, (*base, "stop_grace_period"), out, "stop_grace_period",
                 lambda: duration(spec["stop_grace_period"]))  # fmt: skip
    return out


def _convert(ctx: Context, path: KeyPath, out: dict, key: str, make) -> None:
    try:
        out[key] = make()
    except ValueProblem as exc:
        ctx.found.add(path, str(exc))


def _policy(ctx: Context, base: KeyPath, spec: dict[str, Any]) -> None:
    for key, value in spec.items():
        path = (*base, key)
        if key in UNSAFE and value not in (None, False, [], {}, ""):
            ctx.unsafe(path, UNSAFE[key])
        elif key in NAMESPACES:
            mode = str(value or "")
            if mode in _PRIVATE_NAMESPACE:
                own = "every service joins its environment's network"
                ctx.note(
                    path, f"dropped: {own if key == 'network_mode' else f'the catalog sets {key}'}"
                )
            else:
                what = "host networking" if mode == "host" and key == "network_mode" else key
                ctx.unsafe(
                    path, f"{what} ({mode}) is not allowed: containers keep namespaces of their own"
                )
        elif key == "security_opt":
            for i, option in enumerate(value or []):
                if _UNSAFE_SECURITY.search(str(option)):
                    ctx.unsafe((*path, i), f"{option} is not allowed")
            ctx.note(path, "dropped: the catalog sets the security options (no-new-privileges)")
        elif key in DROPPED:
            ctx.note(path, f"dropped: {DROPPED[key]}")
        elif key in IGNORED:
            ctx.note(path, "dropped: the catalog has no equivalent")
        elif key == "extends":
            ctx.found.add(
                path, "extends is not imported: merge the files first (docker compose config)"
            )


def _environment(ctx: Context, base: KeyPath, spec: dict[str, Any]) -> dict[str, str]:
    values: dict[str, tuple[KeyPath, Any]] = {}
    for i, entry in enumerate(_env_files(spec.get("env_file"))):
        path = (*base, "env_file", i)
        for key, value in _read_env_file(ctx, path, entry).items():
            # A parameter each, defaulting to the file's value (never a secret's).
            ctx.params.file_values.setdefault(key, value)
            values[key] = (path, f"${{{key}}}")
    raw = spec.get("environment")
    items = raw.items() if isinstance(raw, dict) else [_split(e) for e in raw or []]
    for key, value in items:
        path = (*base, "environment", key)
        if value is None:
            ctx.note(path, f"{key} comes from the shell in Compose: it became parameter {key}")
            value = f"${{{key}}}"
        elif _written_secret(key, value):
            ctx.note(path, f"the secret written here is not copied: it became the required "
                     f"secret parameter {key}")  # fmt: skip
            value = f"${{{key}}}"
        values[key] = (path, value)
    result = {}
    for key, (path, value) in values.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            ctx.found.add(path, f"{key!r} is not an environment variable name the catalog takes")
            continue
        try:
            result[key] = ctx.template(value, path, host_key=bool(_HOST_KEY.search(key)))
        except ValueProblem as exc:
            ctx.found.add(path, str(exc))
    return result


def _written_secret(key: str, value: Any) -> bool:
    """A secret's value written into the file itself (not a variable, nor a path to a file
    that holds it): it is not published with the package."""
    if not is_secret_name(key) or key.upper().endswith("_FILE") or not isinstance(value, str):
        return False
    return bool(value) and "$" not in value and not value.startswith("/run/secrets/")


def _split(entry: Any) -> tuple[str, Any]:
    key, sep, value = str(entry).partition("=")
    return key, value if sep else None


def _env_files(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _read_env_file(ctx: Context, path: KeyPath, entry: Any) -> dict[str, str]:
    relative = entry.get("path") if isinstance(entry, dict) else entry
    found = inside(ctx.base, str(relative)) if isinstance(relative, str) else None
    if found is None or not found.is_file() or found.stat().st_size > MAX_COPIED_FILE:
        ctx.note(path, f"{relative} is not beside the Compose file: its variables are not known")
        return {}
    ctx.note(path, f"{relative} inlined into environment")
    return read_dotenv(found.read_text(encoding="utf-8", errors="replace"))


def _ports(ctx: Context, base: KeyPath, spec: dict[str, Any]) -> list[dict[str, Any]]:
    found: dict[tuple[int, str], Port] = {}
    entries = [("ports", i, e) for i, e in enumerate(spec.get("ports") or [])]
    entries += [("expose", i, e) for i, e in enumerate(spec.get("expose") or [])]
    for key, i, entry in entries:
        path = (*base, key, i)
        try:
            if isinstance(entry, dict):
                ports = [long_port(entry)]
            else:
                resolved, _ = ctx.params.resolve(str(entry))
                text = (
                    resolved
                    if resolved is not None
                    else re.sub(r"\$\{[^}]*\}|\$\w+", "1", str(entry))
                )
                ports = short_port(text)
        except ValueProblem as exc:
            ctx.found.add(path, str(exc))
            continue
        for port in ports:
            if key == "expose":
                port = Port(port.container, port.protocol)
            elif port.host:
                ctx.note(path, f"host port {port.host} dropped: the catalog allocates host ports")
            known = found.get((port.container, port.protocol))
            if known is None or (port.published and not known.published):
                found[(port.container, port.protocol)] = port
    result = []
    for port in found.values():
        item: dict[str, Any] = {"container": port.container}
        if port.protocol != "tcp":
            item["protocol"] = port.protocol
        if port.published:
            item["publish"] = True
        if re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", port.name):
            item["name"] = port.name
        result.append(item)
    return result


def _healthcheck(ctx: Context, base: KeyPath, spec: Any) -> dict[str, Any] | None:
    if not isinstance(spec, dict):
        return None
    path = (*base, "healthcheck")
    test = spec.get("test")
    if spec.get("disable") is True or test in (["NONE"], "NONE") or test is None:
        if test is not None or spec.get("disable"):
            ctx.note(
                path,
                "the image's healthcheck is disabled: the catalog waits for the container to run",
            )
        return None
    out: dict[str, Any] = {}
    if isinstance(test, str):
        out["command"] = ctx.template(test, (*path, "test"))
    elif test and test[0] == "CMD-SHELL":
        out["command"] = ctx.template(" ".join(str(t) for t in test[1:]), (*path, "test"))
    elif test and test[0] == "CMD" and len(test) > 1:
        out["command"] = [ctx.template(t, (*path, "test", i + 1)) for i, t in enumerate(test[1:])]
    else:
        ctx.found.add((*path, "test"), "must be CMD, CMD-SHELL, NONE or a command string")
        return None
    for key in ("interval", "timeout", "start_period"):
        if spec.get(key) is not None:
            _convert(ctx, (*path, key), out, key, lambda key=key: duration(spec[key]))
    if isinstance(spec.get("retries"), int):
        out["retries"] = min(max(spec["retries"], 1), 100)
    if "start_interval" in spec:
        ctx.note((*path, "start_interval"), "dropped: the catalog probes at interval")
    return out


def _depends_on(ctx: Context, base: KeyPath, spec: Any) -> list[str]:
    result = []
    entries = spec.items() if isinstance(spec, dict) else [(s, {}) for s in spec or []]
    for other, condition in entries:
        path = (*base, "depends_on", other)
        if other not in ctx.labels:
            ctx.note(path, f"dropped: {other} is not imported")
            continue
        if (
            isinstance(condition, dict)
            and condition.get("condition") == "service_completed_successfully"
        ):
            ctx.note(
                path,
                f"{other} is awaited ready, not completed: the catalog runs services, not jobs",
            )
        result.append(ctx.labels[other])
    return result


def _resources(ctx: Context, base: KeyPath, spec: dict[str, Any]) -> dict[str, Any]:
    deploy: dict[str, Any] = spec["deploy"] if isinstance(spec.get("deploy"), dict) else {}
    limits = (deploy.get("resources") or {}).get("limits") or {}
    wanted: dict[str, tuple[Any, Callable[[Any], Any]]] = {
        "memory": (limits.get("memory", spec.get("mem_limit")), size),
        "cpus": (limits.get("cpus", spec.get("cpus")), float),
        "pids": (limits.get("pids", spec.get("pids_limit")), int),
    }
    out: dict[str, Any] = {}
    for key, (value, convert) in wanted.items():
        if value is not None:
            try:
                out[key] = convert(value)
            except (ValueError, TypeError):
                ctx.found.add(
                    (*base, "deploy", "resources", "limits", key), f"{value!r} is not a {key} limit"
                )
    for key in deploy:
        if key != "resources" or set(deploy["resources"]) - {"limits"}:
            ctx.note(
                (*base, "deploy", key), "dropped: one container per service, limits under resources"
            )
    return out
