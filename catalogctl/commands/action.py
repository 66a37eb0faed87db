"""`catalogctl action`: run restart/stop/start or a package's own action; see its task."""

from __future__ import annotations

import time

import click

from catalogctl.client import Client, path
from catalogctl.commands.values import key_values
from catalogctl.context import api, api_options, env_argument, output_format
from catalogctl.output import dump, record, show, when

TASK_FIELDS = (
    ("task", "id"),
    ("app", "app"),
    ("service", "service"),
    ("action", "action"),
    ("status", "status"),
    ("exit code", "exit_code"),
    ("error", lambda t: t.get("error") or None),
    ("created", lambda t: when(t.get("created_at"))),
    ("finished", lambda t: when(t.get("finished_at"))),
)


def show_task(task: dict) -> None:
    record(task, TASK_FIELDS)
    if task.get("output"):
        click.echo("")
        click.echo(task["output"].rstrip("\n"))


def wait_task(client: Client, env: str, task_id: str, timeout: float) -> dict:
    # imported when used: SQLAlchemy and Flask would slow every start of the CLI
    from catalog.models.deployment import TaskStatus

    deadline = time.monotonic() + timeout
    while True:
        task = client.json("GET", path("environments", env, "tasks", task_id))
        if task["status"] not in (TaskStatus.QUEUED, TaskStatus.RUNNING):
            return task
        if time.monotonic() > deadline:
            raise click.ClickException(
                f"task {task_id} is still {task['status']} after {timeout:g} s; "
                f"see it later with `catalogctl action show {env} {task_id}`"
            )
        time.sleep(0.3)


@click.group()
def action() -> None:
    """Actions on a deployed app: restart, stop, start, or one its package defines."""


@action.command("run")
@env_argument
@click.argument("app")
@click.argument("name", metavar="ACTION")
@click.option("--service", help="Built-in actions: only this service instead of the whole app.")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A parameter of the action (VALUE is JSON when it parses as JSON).")  # fmt: skip
@click.option("--wait/--no-wait", default=True, show_default=True, help="Until it finishes.")
@click.option("--timeout", type=float, default=300, show_default=True, help="Seconds to wait.")
@api_options
def run_command(env, app, name, service, params, wait: bool, timeout: float) -> None:
    """Run ACTION on APP in ENV; prints its output, exits non-zero when it fails."""
    # imported when used: SQLAlchemy and Flask would slow every start of the CLI
    from catalog.models.deployment import TaskStatus

    client = api()
    body = {"service": service, "parameters": key_values(params, "--param")}
    task = client.json("POST", path("environments", env, "apps", app, "actions", name), json=body)
    if wait:
        task = wait_task(client, env, task["id"], timeout)
    if output_format() != "table":
        dump(task)
    elif not wait:
        click.echo(f"task {task['id']} {task['status']}; see it with "
                   f"`catalogctl action show {env} {task['id']}`")  # fmt: skip
    elif task.get("output"):
        click.echo(task["output"].rstrip("\n"))
    if task["status"] == TaskStatus.FAILED:
        code = f" (exit code {task['exit_code']})" if task.get("exit_code") is not None else ""
        raise click.ClickException(
            f"{name} on {app} failed{code}: {task.get('error') or 'see its output'}"
        )
    if wait and output_format() == "table":
        click.echo(f"{name} on {app}: {task['status']}")


@action.command("show")
@env_argument
@click.argument("task_id", metavar="TASK")
@api_options
def show_command(env: str, task_id: str) -> None:
    """A task: status, exit code, error and the tail of its output."""
    show(api().json("GET", path("environments", env, "tasks", task_id)), show_task)
