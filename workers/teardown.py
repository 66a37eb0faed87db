"""Deleting an environment: every engine object carrying its label goes, then its rows."""

from __future__ import annotations

from catalog.models import Environment
from catalog.models.environment import EnvironmentStatus
from workers import lease
from workers.runtime import Runtime, lease_seconds


class TeardownBusy(Exception):
    """A deployment still holds the environment; it notices the deletion and stops."""


def delete_environment(rt: Runtime, env_id: str) -> str:
    with rt.sessions() as session:
        environment = session.get(Environment, env_id)
        if environment is None:
            return "gone"
        if environment.status != EnvironmentStatus.DELETING:
            return "skipped"
    fencing = lease.acquire(rt.sessions, env_id, rt.owner, seconds=lease_seconds(rt))
    if fencing is None:
        raise TeardownBusy(env_id)
    try:
        rt.engine.remove_environment_objects(env_id)
        with rt.sessions() as session:
            environment = session.get(Environment, env_id)
            if environment is not None:
                session.delete(environment)
            session.commit()
    finally:
        lease.release(rt.sessions, env_id, rt.owner, fencing)
    return "deleted"
