"""The render child: its limits hold whatever a template does, and it holds nothing to steal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog import config
from packages import render_process
from packages.errors import RenderError
from packages.render import SAFE_JINJA, jinja_version, render_file, template_context
from packages.render_process import RenderLimits, RenderProcess

ROOT = Path(__file__).resolve().parents[2]
# Four loops that call nothing over a 1,000-character string: 10^12 iterations.
RUNAWAY = (
    "{% set s = 'x' * 1000 %}{% for a in s %}{% for b in s %}{% for c in s %}{% for d in s %}"
    "{% endfor %}{% endfor %}{% endfor %}{% endfor %}"
)
MEMORY_BOMBS = [
    "{{ ('a' * 100000) | replace('a', 'b' * 100000) }}",
    "{{ ('a' * 100000) | join('b' * 100000) }}",
    "{{ ('a ' * 50000) | wordwrap(1, wrapstring='b' * 100000) }}",
    "{{ ['b' * 100000] * 100000 }}",
]
ESCAPES = [
    "{{ '{0.__init__.__globals__[os].environ}'.format(cycler) }}",
    "{{ ('{0.__init__.__globals__}' | attr('format'))(cycler) }}",
    "{{ '{p.__class__.__mro__}'.format_map({'p': params}) }}",
    "{{ cycler.__init__.__globals__.os.environ }}",
]


@pytest.fixture
def context() -> dict:
    return template_context(
        params={"password": "s3cret"}, settings={}, bindings={}, services={}, app={"name": "a"}
    )


def render_in_child(template: str, context: dict, limits: RenderLimits | None = None, **kw):
    with RenderProcess(limits or RenderLimits(), **kw) as child:
        return child.bind(context)(template, service="web", field="files./etc/a.conf")


def test_a_runaway_loop_is_killed_at_the_time_limit(context: dict) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError, match=r"rendering took longer than 1 s") as caught:
        render_in_child(RUNAWAY, context, RenderLimits(seconds=1))
    assert time.monotonic() - started < 1 + 2
    assert caught.value.field == "files./etc/a.conf"


def test_the_time_limit_is_shared_by_all_templates_of_a_deployment(context: dict) -> None:
    """Templates that each fit in the limit run out of it together: the budget is the
    deployment's, not each template's."""
    slow = "{% for a in range(300) %}{% for b in range(1000) %}{% endfor %}{% endfor %}"
    rendered = 0
    limit = pytest.raises(RenderError, match=r"rendering took longer than 1 s")
    with RenderProcess(RenderLimits(seconds=1)) as child, limit:
        render = child.bind(context)
        for _ in range(1000):
            render(slow, service="web", field="command")
            rendered += 1
    assert rendered >= 2, "a single template took the whole budget: nothing was shared"


@pytest.mark.parametrize("template", MEMORY_BOMBS)
def test_memory_bombs_meet_the_memory_limit(context: dict, template: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError, match=r"more than 64 MB of memory|byte limit"):
        render_in_child(template, context, RenderLimits(seconds=20, memory_mb=64))
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("template", ESCAPES)
def test_python_internals_stay_out_of_reach(context: dict, template: str) -> None:
    with pytest.raises(RenderError, match=r"refused by the template sandbox|undefined"):
        render_in_child(template, context)


def test_a_cancel_stops_a_runaway_render_at_once(context: dict) -> None:
    class Cancelled(Exception):
        pass

    asked = []

    def should_stop() -> None:
        asked.append(time.monotonic())
        if len(asked) == 2:
            raise Cancelled

    started = time.monotonic()
    with RenderProcess(RenderLimits(seconds=30), should_stop=should_stop) as child:
        with pytest.raises(Cancelled):
            child.bind(context)(RUNAWAY, service="web", field="command")
        assert child._child is None  # killed, not left running
    assert time.monotonic() - started < 3


def test_the_child_has_no_environment_no_root_and_hard_limits(context: dict) -> None:
    os.environ["CATALOG_TEST_CANARY"] = "postgresql://catalog:pw@db/catalog"
    try:
        with RenderProcess(RenderLimits(seconds=7, memory_mb=100)) as child:
            assert child.bind(context)("{{ app.name }}", service="s", field="f") == "a"
            pid = child._child.pid
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
            limits = Path(f"/proc/{pid}/limits").read_text()
    finally:
        del os.environ["CATALOG_TEST_CANARY"]
    assert environ == b""
    if os.geteuid() == 0:
        assert re.search(r"^Uid:\s+65534\s", status, re.M)
    assert re.search(r"^Max cpu time\s+8\s+9\s", limits, re.M)
    assert re.search(r"^Max open files\s+3\s+3\s", limits, re.M)
    assert re.search(r"^Max address space\s+\d+\s", limits, re.M)


def test_a_file_template_error_names_the_member(context: dict) -> None:
    with RenderProcess(RenderLimits(seconds=1)) as child, pytest.raises(RenderError) as caught:
        render_file("web", "/etc/a.conf", "files/a.conf.j2", RUNAWAY.encode(), child.bind(context))
    assert str(caught.value) == (
        "services.web.files./etc/a.conf: files/a.conf.j2: rendering took longer than 1 s"
    )


def test_a_dead_child_is_a_render_error(context: dict) -> None:
    with RenderProcess() as child:
        render = child.bind(context)
        assert render("{{ 1 }}", service="s", field="f") == "1"
        child._child.kill()
        with pytest.raises(RenderError, match="render process stopped"):
            render("{{ 2 }}", service="s", field="f")


PROTOCOL = "out of protocol"


@pytest.mark.parametrize(
    ("answer", "expected", "padding"),
    [
        ("sys.stdout.buffer.write(b'\\xff\\xff\\xff\\xff')", PROTOCOL, 0),  # a 4 GiB frame
        ("frame(b'{\"text\": 1}')", PROTOCOL, 0),
        ("frame(b'[]')", PROTOCOL, 0),
        ("frame(b'{\"text\":' + b'[' * 100000 + b']' * 100000 + b'}')", PROTOCOL, 0),  # deep
        ('frame(b\'{"text": "\\\\ud800"}\')', PROTOCOL, 0),  # a lone surrogate
        ('frame(b\'{"error": "\\\\ud800", "variable": "x"}\')', "\\?", 0),
        ("time.sleep(60)", "rendering took longer than 1 s", 0),  # never answers
        ("time.sleep(60)", "rendering took longer than 1 s", 200_000),  # nor reads: a full pipe
    ],
)
def test_a_hostile_child_cannot_hold_or_fool_the_parent(
    context: dict, answer: str, expected: str, padding: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    boot = (
        "import sys, time\n"
        "def frame(body):\n"
        "    sys.stdout.buffer.write(len(body).to_bytes(4, 'big') + body)\n"
        "    sys.stdout.flush()\n"
        "frame(b'{\"ready\": true}')\n"
        f"sys.stdin.buffer.read(1); {answer}; sys.stdout.flush(); time.sleep(60)"
    )
    monkeypatch.setattr(render_process, "_BOOT", boot)
    render_process._SPARE.discard()
    started = time.monotonic()
    with pytest.raises(RenderError, match=expected):
        render_in_child("{{ 1 }}" + "x" * padding, context, RenderLimits(seconds=1))
    assert time.monotonic() - started < 3
    render_process._SPARE.discard()


def test_setup_admits_only_jinja_without_known_sandbox_escapes() -> None:
    setup = (ROOT / "setup.py").read_text()
    pin = re.search(r'"Jinja2>=([\d.]+),', setup)
    assert pin is not None
    assert jinja_version(pin.group(1)) >= SAFE_JINJA
    assert jinja_version() >= SAFE_JINJA


CONFINED = """
import os, socket, sys
sys.path.insert(0, sys.argv[1])
from packages import render_child, seccomp
render_child.confine(64, 5)
assert seccomp.install()
tries = {
    "open the parent's environment": lambda: open(f"/proc/{os.getppid()}/environ", "rb"),
    "open a file": lambda: open("/etc/hostname", "rb"),
    "a socket": lambda: socket.socket(socket.AF_UNIX),
    "exec": lambda: os.execv("/bin/true", ["true"]),
    "fork": os.fork,
    "signal the parent": lambda: os.kill(os.getppid(), 0),
}
for name, attempt in tries.items():
    try:
        attempt()
    except PermissionError:
        print(name, "refused")
    except OSError as exc:
        print(name, "failed", exc.errno)
print("sum", sum(range(10)))
"""


def test_the_confined_child_can_compute_but_not_reach_outside() -> None:
    # A world-readable file refused shows the filter, not the user, refuses: a child that
    # keeps the worker's user (the image runs as `catalog`) is refused its /proc the same way.
    done = subprocess.run(
        [sys.executable, "-I", "-c", CONFINED, str(ROOT)], capture_output=True, text=True, env={}
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "sum 45"
    assert all(line.endswith(" refused") for line in lines[:-1]), lines
    assert len(lines) == 7


def test_the_render_child_runs_under_the_filter(context: dict) -> None:
    with RenderProcess() as child:
        assert child.bind(context)("{{ 6 * 7 }}", service="s", field="f") == "42"
        status = Path(f"/proc/{child._child.pid}/status").read_text()
    assert re.search(r"^Seccomp:\s+2$", status, re.M)


def test_render_limits_are_read_from_the_settings_and_checked() -> None:
    settings = config.load(
        {"CATALOG_RENDER_TIME_LIMIT_SECONDS": "1.5", "CATALOG_RENDER_MEMORY_MB": "100"}
    )
    assert RenderLimits.from_settings(settings) == RenderLimits(seconds=1.5, memory_mb=100)
    with pytest.raises(ValueError, match="CATALOG_RENDER_MEMORY_MB"):
        config.load({"CATALOG_RENDER_MEMORY_MB": "4"})
    with pytest.raises(ValueError, match="CATALOG_RENDER_TIME_LIMIT_SECONDS"):
        config.load({"CATALOG_RENDER_TIME_LIMIT_SECONDS": "0"})


def test_the_render_child_refuses_to_serve_where_it_cannot_confine_itself(monkeypatch) -> None:
    from packages import render_child, seccomp

    monkeypatch.setattr(seccomp, "supported", lambda: False)
    with pytest.raises(SystemExit, match="cannot confine itself"):
        render_child.main(["64", "5"])  # refused before any limit or template
