"""The README's walkthrough, run as written against `catalogctl up` on PostgreSQL + RabbitMQ.

The stack is what `make run` starts (API under gunicorn, a worker with the resync, the
tracker; the examples published; an admin token saved as the profile `local`), here on the
session's PostgreSQL database and this run's RabbitMQ queue. Each command of the walkthrough
runs in bash from the clone's root with the virtualenv first on PATH, as a reader would type
it; its exit status and output must be what the README shows. The front re-reads the store
every two seconds, so a `curl` of it is repeated (bounded) until it shows what the README says.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import BIN, free_port
from tests.e2e.upstack import UpProcess
from tests.e2e.walkthrough import Step, output_pattern, steps

README = ROOT / "README.md"
RETRY_SECONDS = 15


def test_the_output_matching_understands_ellipses():
    step = Step("x", "... revision 1 queued\n...\nrevision 1 of demo is deployed in ... s")
    assert step.matches("12:00:01 revision 1 queued\na\nb\nrevision 1 of demo is deployed in 1.0 s")
    assert not step.matches("12:00:01 revision 1 queued\nrevision 1 of demo failed")
    assert output_pattern("a.b (c)").fullmatch("a.b (c)")
    assert not output_pattern("a.b").fullmatch("axb")
    assert Step("x", "Error: nope").fails and not Step("x", "fine").fails


def test_the_walkthrough_covers_the_story():
    commands = [step.command for step in steps(README)]
    for expected in (
        "catalogctl package publish docs/walkthrough/kv-front-1.1.0-rc.1",
        "catalogctl env create demo",
        "catalogctl app add demo front --package org.example.kvfront --bind store=store",
        "catalogctl deploy demo",
        'curl -s "$(catalogctl app endpoint demo front)"',
        "catalogctl logs demo front",
        "catalogctl deploy demo --from-revision 1",
        "catalogctl env delete demo --yes",
    ):
        assert expected in commands
    assert sum(step.fails for step in steps(README)) == 1  # the failing upgrade


def run(step: Step, env: dict[str, str]) -> str:
    deadline = time.monotonic() + (RETRY_SECONDS if step.command.startswith("curl") else 0)
    while True:
        done = subprocess.run(
            ["bash", "-c", step.command],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        if step.matches(done.stdout) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (done.returncode != 0) == step.fails, (step.command, done.returncode, done.stdout)
    assert step.matches(done.stdout), (
        f"`{step.command}` printed:\n{done.stdout}\nbut the README shows:\n{step.shown}"
    )
    return done.stdout


@pytest.mark.usefixtures("engine_cleanup")
def test_the_readme_walkthrough_runs_as_written(service_env, tmp_path):
    env = {**service_env, "PATH": f"{BIN}:{service_env['PATH']}"}
    up = UpProcess(
        [BIN / "catalogctl", "up", "--port", str(free_port()), "--home", str(tmp_path / "var")],
        env,
        ROOT,
    )
    try:
        up.ready()
        for step in steps(README):
            run(step, env)
    finally:
        code = up.interrupt()
    assert code == 0, up.output
