"""Running an action's task: built-in restart/stop/start, or a package's command by exec."""

from __future__ import annotations

import json

from docker.errors import APIError, NotFound
from sqlalchemy import select

from catalog.models import ContainerRecord, Environment, Task
from catalog.models.common import utcnow
from catalog.models.deployment import deployed_app
from catalog.secretbox import SecretKeyError, open_all
from packages.secrets import redact, secret_strings
from workers import lease
from workers.deploy import STOP_TIMEOUT, Runtime

OUTPUT_TAIL = 4096  # bytes of output kept on the task


class ActionBusy(Exception):
    """A deployment holds the environment; the built-in action waits its turn."""


def _finish(rt: Runtime, task_id: str, *, status: str, exit_code=None, output="", error="") -> str:
    with rt.sessions() as session:
        task = session.get(Task, task_id)
        if task is not None:
            task.status, task.exit_code, task.finished_at = status, exit_code, utcnow()
            task.output, task.error = output[-OUTPUT_TAIL:], error
            session.commit()
    return status


def _targets(rt: Runtime, task: Task) -> list:
    return [
        c
        for c in rt.driver.observe(task.environment_id)
        if c.app == task.app and (task.service is None or c.service == task.service)
    ]


def run(rt: Runtime, task_id: str) -> str:
    with rt.sessions() as session:
        task = session.get(Task, task_id)
        if task is None or task.status != "queued":
            return "skipped"
        environment = session.get(Environment, task.environment_id)
        if environment is None or environment.status == "deleting":
            task.status, task.error = "failed", "the environment is being deleted"
            session.commit()
            return "failed"
        task.status, task.started_at = "running", utcnow()
        session.commit()
        session.expunge(task)
    try:
        if task.action in ("restart", "stop", "start"):
            return _built_in(rt, task)
        return _package_command(rt, task)
    except ActionBusy:
        with rt.sessions() as session:
            session.get(Task, task_id).status = "queued"
            session.commit()
        raise
    except (APIError, NotFound, OSError) as exc:
        return _finish(rt, task_id, status="failed", error=f"the engine refused: {exc}")


def _built_in(rt: Runtime, task: Task) -> str:
    fencing = lease.acquire(rt.sessions, task.environment_id, rt.owner)
    if fencing is None:
        raise ActionBusy(task.environment_id)
    try:
        targets = _targets(rt, task)
        if not targets:
            return _finish(rt, task.id, status="failed", error="no container to act on")
        for container in targets:
            if task.action == "stop":
                rt.driver.stop(container.id, timeout=STOP_TIMEOUT)
            elif task.action == "start":
                rt.driver.start(container.id)
            else:
                rt.driver.client.api.restart(container.id, timeout=STOP_TIMEOUT)
        _record_intent(rt, [c.id for c in targets], task.action)
    finally:
        lease.release(rt.sessions, task.environment_id, rt.owner, fencing)
    done = {"stop": "stopped", "start": "started", "restart": "restarted"}[task.action]
    return _finish(rt, task.id, status="succeeded", exit_code=0,
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
        app = deployed_app(session, environment.id, environment.current_revision, task.app)
    action = ((app or {}).get("manifest", {}).get("actions") or {}).get(task.action)
    if action is None:
        return _finish(rt, task.id, status="failed", error="the action is no longer deployed")
    running = [c for c in _targets(rt, task) if c.running]
    if not running:
        return _finish(
            rt, task.id, status="failed", error=f"service {task.service!r} is not running"
        )
    try:
        parameters = open_all(task.parameters, rt.secrets)
        hidden = _secrets(open_all(app, rt.secrets), action, parameters)
    except SecretKeyError as exc:
        return _finish(rt, task.id, status="failed", error=str(exc))
    environment_vars = {
        f"PARAM_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
        for name, value in parameters.items()
    }
    result = rt.driver.client.api.exec_create(
        running[0].id, action["command"], environment=environment_vars, stdout=True, stderr=True
    )
    output = rt.driver.client.api.exec_start(result["Id"]).decode("utf-8", errors="replace")
    output = redact(output, hidden)
    exit_code = rt.driver.client.api.exec_inspect(result["Id"])["ExitCode"]
    if exit_code == 0:
        return _finish(rt, task.id, status="succeeded", exit_code=0, output=output)
    return _finish(rt, task.id, status="failed", exit_code=exit_code, output=output,
                   error=f"the command exited with code {exit_code}")  # fmt: skip
