"""Engine object names, derived so that no two (environment, app, object) meet.

App and service names are DNS labels (letters, digits and '-'); volume names are slugs that
may hold '_' too; environment ids are hex. Parts are joined by a separator no part before
the last may hold, so one name splits back into its parts in exactly one way: app `a` with
volume `b-data` and app `a-b` with volume `data` get two volumes, not one.
"""

from __future__ import annotations

# Neither an app nor a service name (DNS labels) holds '_' or '.'.
SEPARATOR = "_"
PREFIX = "cat-"


def network_name(env_id: str) -> str:
    return f"{PREFIX}{env_id}"


def volume_name(env_id: str, app: str, volume: str) -> str:
    """`cat-<env>_<app>_<volume>`: env (hex) and app hold no '_', so the volume is the rest."""
    return f"{PREFIX}{env_id}{SEPARATOR}{app}{SEPARATOR}{volume}"


def snapshot_volume_name(env_id: str, app: str, volume: str, revision: int) -> str:
    """`cat-snap-<env>_<app>_<volume>_r<revision>`: the copy of an app volume that revision
    `revision` made before changing it (the last part, after the last `_r`, is the revision)."""
    return f"{PREFIX}snap-{env_id}{SEPARATOR}{app}{SEPARATOR}{volume}{SEPARATOR}r{revision}"


def legacy_volume_name(env_id: str, app: str, volume: str) -> str:
    """The name volumes had before (ambiguous: `a` + `b-data` = `a-b` + `data`); a volume of
    this name is kept only for the app its label says made it."""
    return f"{PREFIX}{env_id}-{app}-{volume}"


def container_name(env_id: str, app: str, service: str, replica: int, revision: int) -> str:
    """`cat-<env12>_<app>_<service>_<replica>_r<revision>`."""
    parts = (env_id[:12], app, service, str(replica), f"r{revision}")
    return PREFIX + SEPARATOR.join(parts)


def hostname(app: str, service: str) -> str:
    """The DNS name other containers of the environment reach a service by:
    `<service>.<app>`, two DNS labels, so `a`/`b-c` and `a-b`/`c` differ."""
    return f"{service}.{app}"
