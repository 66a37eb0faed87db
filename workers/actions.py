"""Running an action's task: built-in restart/stop/start, or a package's command by exec."""

from __future__ import annotations

import json

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select

from catalog.models import ContainerRecord, Environment, Task
from catalog.models.common import utcnow
from catalog.models.deployment import TaskStatus, deployed_app
from catalog.models.environment import EnvironmentStatus
from catalog.secretbox import SecretKeyError, open_all
from packages.container import parse_duration
from packages.limits import TIME_BOUNDS
from packages.secrets import redact, secret_strings
from workers import lease
from workers.deploy.execution import STOP_TIMEOUT
from workers.engine import EngineError
from workers.engine.execs import OUTPUT_KEEP, run_bounded
from workers.runtime import Runtime

# What a task keeps of an output: run_bounded's head and tail, and its note of the cut.
OUTPUT_MAX_CHARS = 2 * OUTPUT_KEEP + 100


class ActionBusy(Exception):
    """A deployment holds the environment; the built-in action waits its turn."""


def _finish(
    rt: Runtime, task_id: str, *, status: str, exit_code=None, output="", error="", cut=0
) -> str:
    with rt.sessions() as session:
        task = session.get(Task, task_id)
        if task is not None:
            task.status, task.exit_code, task.finished_at = status, exit_code, utcnow()
            task.output, task.error = output[:OUTPUT_MAX_CHARS], error
            task.output_cut = cut
            session.commit()
    return status


def _targets(rt: Runtime, task: Task) -> list:
    return [
        c
        for c in rt.engine.observe(task.environment_id)
        if c.app == task.app and (task.service is None or c.service == task.service)
    ]


def run(rt: Runtime, task_id: str) -> str:
    with rt.sessions() as session:
        task = session.get(Task, task_id)
        if task is None or task.status != TaskStatus.QUEUED:
            return "skipped"
        environment = session.get(Environment, task.environment_id)
        if environment is None or environment.status == EnvironmentStatus.DELETING:
            task.status, task.error = TaskStatus.FAILED, "the environment is being deleted"
            session.commit()
            return "failed"
        task.status, task.started_at = TaskStatus.RUNNING, utcnow()
        session.commit()
        session.expunge(task)
    try:
        if task.action in ("restart", "stop", "start"):
            return _built_in(rt, task)
        return _package_command(rt, task)
    except ActionBusy:
        with rt.sessions() as session:
            waiting = session.get(Task, task_id)
            if waiting is not None:
                waiting.status = TaskStatus.QUEUED
            session.commit()
        raise
    except (EngineError, OSError) as exc:
        return _finish(rt, task_id, status=TaskStatus.FAILED, error=f"the engine refused: {exc}")
    except SoftTimeLimitExceeded:
        return _finish(
            rt, task_id, status=TaskStatus.FAILED, error="the action ran past its time limit"
        )


def _built_in(rt: Runtime, task: Task) -> str:
    fencing = lease.acquire(rt.sessions, task.environment_id, rt.owner)
    if fencing is None:
        raise ActionBusy(task.environment_id)
    try:
        targets = _targets(rt, task)
        if not targets:
            return _finish(rt, task.id, status=TaskStatus.FAILED, error="no container to act on")
        for container in targets:
            if task.action == "stop":
                rt.engine.stop(container.id, timeout=STOP_TIMEOUT)
            elif task.action == "start":
                rt.engine.start(container.id)
            else:
                rt.engine.restart(container.id, timeout=STOP_TIMEOUT)
        _record_intent(rt, [c.id for c in targets], task.action)
    finally:
        lease.release(rt.sessions, task.environment_id, rt.owner, fencing)
    done = {"stop": "stopped", "start": "started", "restart": "restarted"}[task.action]
    return _finish(rt, task.id, status=TaskStatus.SUCCEEDED, exit_code=0,
                   output=f"{done} {len(targets)} container(s)")  # fmt: skip


def _record_intent(rt: Runtime, container_ids: list[str], action: str) -> None:
    """A user's stop is kept: the tracker restarts only what died, not what was stopped."""
    with rt.sessions() as session:
        records = session.scalars(
            select(ContainerRecord).where(ContainerRecord.id.in_(container_ids))
        )
        for record in records:
            record.state = "stopped" if action == "stop" else "running"
            record.deaths, record.next_restart_at = [], None
            record.updated_at = utcnow()
        session.commit()


def _secrets(app: dict, action: dict, parameters: dict) -> frozenset[str]:
    """The app's secret parameters and the action's: a command that echoes one shows MASK."""
    own = secret_strings(parameters, [action.get("parameters")])
    return own | secret_strings(app.get("parameters", {}), [app["manifest"].get("parameters")])


def _package_command(rt: Runtime, task: Task) -> str:
    with rt.sessions() as session:
        environment = session.get(Environment, task.environment_id)
        assert environment is not None  # an environment with a running task is not deleted
        app = deployed_app(session, environment.id, environment.current_revision, task.app)
    action = ((app or {}).get("manifest", {}).get("actions") or {}).get(task.action)
    if action is None:
        return _finish(
            rt, task.id, status=TaskStatus.FAILED, error="the action is no longer deployed"
        )
    running = [c for c in _targets(rt, task) if c.running]
    if not running:
        return _finish(
            rt, task.id, status=TaskStatus.FAILED, error=f"service {task.service!r} is not running"
        )
    try:
        parameters = open_all(task.parameters, rt.secrets)
        hidden = _secrets(open_all(app, rt.secrets), action, parameters)
    except SecretKeyError as exc:
        return _finish(rt, task.id, status=TaskStatus.FAILED, error=str(exc))
    environment_vars = {
        f"PARAM_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
        for name, value in parameters.items()
    }
    result = run_bounded(
        rt.engine, running[0].id, action["command"], environment=environment_vars,
        timeout=action_timeout(action), marker=task.id,
    )  # fmt: skip
    kept = {"output": redact(result.output, hidden), "cut": result.cut}
    if result.stopped:
        return _finish(rt, task.id, status=TaskStatus.FAILED, error=result.stopped, **kept)
    if result.exit_code == 0:
        return _finish(rt, task.id, status=TaskStatus.SUCCEEDED, exit_code=0, **kept)
    return _finish(rt, task.id, status=TaskStatus.FAILED, exit_code=result.exit_code,
                   error=f"the command exited with code {result.exit_code}", **kept)  # fmt: skip


def action_timeout(action: dict) -> float:
    """Seconds a package action's command may run: its own `timeout` (default 1 min), never
    more than the bound, even for a package stored before the bound was checked at upload."""
    given = action.get("timeout")
    seconds = TIME_BOUNDS.action_timeout_default if given is None else parse_duration(given)
    return min(seconds, TIME_BOUNDS.action_timeout)
