"""Rendering a deployment's templates in a child process whose limits hold.

A template is publisher code. The Jinja sandbox keeps it from Python's internals,
but not from a loop that calls nothing or a filter that builds gigabytes; and a
sandbox bug would hand it the worker. So every template of one deployment renders
in one child (`packages.render_child`): started with an empty environment, without
root, with its memory, CPU time, files and processes capped, and killed by this
side when its wall-clock budget for the deployment is spent. It answers only with
text, which is put back into the fields this side chose: nothing it says can add a
field, a file or an image. A fresh child serves each deployment (tenants never
share one); a spare is started ahead so that a deployment does not wait for it.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from packages.errors import RenderError
from packages.render import MAX_RENDERED_BYTES, TextRenderer
from packages.render_child import HEADER, MAX_FRAME_BYTES, encode

#: How often a wait for the child also asks whether the deployment was cancelled.
CANCEL_POLL_SECONDS = 0.5
#: A child that is not ready this long after it started is broken (it runs only our code).
STARTUP_SECONDS = 30.0
#: Longest error message taken from the child (it is untrusted once it runs a template).
MAX_ERROR_CHARS = 500
_ROOT = str(Path(__file__).resolve().parents[1])  # the directory that holds `packages`
_BOOT = (
    "import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
    "from packages.render_child import main; main(sys.argv[2:])"
)


class RenderSettings(Protocol):
    """The settings the limits come from (`catalog.config.Settings` has them)."""

    @property
    def render_time_limit_seconds(self) -> float: ...

    @property
    def render_memory_mb(self) -> int: ...


@dataclass(frozen=True)
class RenderLimits:
    """What the templates of one deployment may use together."""

    seconds: float = 5.0  # wall-clock time spent rendering (CATALOG_RENDER_TIME_LIMIT_SECONDS)
    memory_mb: int = 256  # memory beyond the child's interpreter (CATALOG_RENDER_MEMORY_MB)

    @classmethod
    def from_settings(cls, settings: RenderSettings) -> RenderLimits:
        return cls(
            seconds=settings.render_time_limit_seconds,
            memory_mb=settings.render_memory_mb,
        )

    @property
    def cpu_seconds(self) -> int:
        """The child's CPU limit: a backstop behind the wall-clock kill."""
        return math.ceil(self.seconds) + 1


class _ChildFailed(Exception):
    """The child broke the protocol, died, or ran out of its budget; the message says which."""


# --- starting children, and the spare ---------------------------------------------------


def _command(limits: RenderLimits) -> list[str]:
    # -I -S: no environment variables, user site or .pth files; the path is ours, given.
    paths = json.dumps([_ROOT, *(p for p in sys.path if p and p != _ROOT)])
    return [sys.executable, "-I", "-S", "-c", _BOOT, paths,
            str(limits.memory_mb), str(limits.cpu_seconds)]  # fmt: skip


def _launch(limits: RenderLimits) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        _command(limits),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={},  # no database, broker or secret key: nothing to read even after an escape
        cwd="/",
    )


def _stdin(child: subprocess.Popen[bytes]) -> IO[bytes]:
    assert child.stdin is not None  # `_launch` pipes it
    return child.stdin


def _stdout(child: subprocess.Popen[bytes]) -> IO[bytes]:
    assert child.stdout is not None  # `_launch` pipes it
    return child.stdout


class _Spare:
    """One child started ahead per process, taken by the next deployment that renders."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._limits: RenderLimits | None = None

    def take(self, limits: RenderLimits) -> subprocess.Popen[bytes]:
        """A started child for `limits`: the spare when it fits, else a new one."""
        with self._lock:
            child, self._child = self._child, None
            fits = self._limits == limits
        if child is not None and (not fits or child.poll() is not None):
            _kill(child)
            child = None
        return child if child is not None else _launch(limits)

    def refill(self, limits: RenderLimits) -> None:
        """Start the spare for the next deployment (after a render: it does not compete)."""
        with self._lock:
            if self._child is not None and self._limits == limits:
                return
            stale, self._child, self._limits = self._child, _launch(limits), limits
        if stale is not None:
            _kill(stale)

    def discard(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            _kill(child)

    def forget(self) -> None:
        """In a forked process: the spare is the parent's; close our copies of its pipes."""
        self._lock = threading.Lock()  # another thread may have held it at the fork
        child, self._child = self._child, None
        if child is not None:
            _stdin(child).close()
            _stdout(child).close()
            child.returncode = 0  # not ours to wait for


_SPARE = _Spare()
atexit.register(_SPARE.discard)
os.register_at_fork(after_in_child=_SPARE.forget)


def start_spare(limits: RenderLimits) -> None:
    """Have a child ready for this process's first deployment (a worker's warm-up)."""
    _SPARE.refill(limits)


def _kill(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.kill()
    child.wait()
    for stream in (_stdin(child), _stdout(child)):
        stream.close()


# --- one deployment's child ---------------------------------------------------------------


class _Refusal(_ChildFailed):
    """The child rendered nothing and said why: a template error, not a dead child."""

    def __init__(self, answer: dict[str, Any]) -> None:
        message, variable = answer.get("error"), answer.get("variable", "")
        if not isinstance(message, str) or not isinstance(variable, str):
            message, variable = "the render process answered out of protocol", ""
        super().__init__(_printable(message))
        self.variable = _printable(variable)


def _printable(text: str) -> str:
    """Bounded, and encodable (a lone surrogate would fail the database write)."""
    return text[:MAX_ERROR_CHARS].encode("utf-8", "replace").decode("utf-8")


def _checked_text(text: str) -> str:
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _ChildFailed("the render process answered out of protocol") from None
    if size > MAX_RENDERED_BYTES:
        raise _ChildFailed(f"a value would exceed the {MAX_RENDERED_BYTES} byte limit")
    return text


def _death(child: subprocess.Popen[bytes], limits: RenderLimits) -> str:
    code = child.wait()
    if code == -signal.SIGXCPU:
        return f"the template used more than its CPU time limit ({limits.cpu_seconds} s)"
    how = f"signal {-code}" if code < 0 else f"exit status {code}"
    return f"the render process stopped ({how}) while rendering this template"


class RenderProcess:
    """The child that renders one deployment's templates, started at the first template.

    `should_stop()` is called while waiting (at least every CANCEL_POLL_SECONDS); what it
    raises (a cancel, a lost lease) ends the child and propagates. Use as a context
    manager: leaving it kills the child.
    """

    def __init__(
        self, limits: RenderLimits = RenderLimits(), should_stop: Callable[[], None] | None = None
    ) -> None:
        self.limits = limits
        self._should_stop = should_stop or (lambda: None)
        self._child: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._sent: object = None  # the context the child holds
        self._starting = False
        self.spent = 0.0  # seconds spent waiting for the child's answers

    def __enter__(self) -> RenderProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill the child, if one started; the spare for the next deployment starts then."""
        if self._child is not None:
            _kill(self._child)
            self._child = None
            _SPARE.refill(self.limits)

    def bind(self, context: Mapping[str, Any]) -> TextRenderer:
        """A renderer of the templates that see `context` (one app's)."""
        context = dict(context)

        def render(source: str, *, service: str, field: str) -> str:
            try:
                return self._render(context, source)
            except _Refusal as exc:
                raise RenderError(
                    str(exc), service=service, field=field, variable=exc.variable
                ) from None
            except _ChildFailed as exc:
                self.close()
                raise RenderError(str(exc), service=service, field=field) from None
            except BaseException:  # a cancel or a lost lease: the child goes at once
                self.close()
                raise

        return render

    def _render(self, context: dict, source: str) -> str:
        if self._child is None:
            self._start()
        if self._sent is not context:
            self._send({"context": context})
            self._sent = context
        self._send({"source": source})
        answer = self._receive()
        if isinstance(answer.get("text"), str):
            return _checked_text(answer["text"])
        raise _Refusal(answer)

    def _start(self) -> None:
        self._child = _SPARE.take(self.limits)
        os.set_blocking(_stdin(self._child).fileno(), False)  # a child that stops reading
        self._buffer, self._sent = b"", None
        # Starting runs only our code: its time is not the templates' budget.
        spent, self.spent, self._starting = self.spent, 0.0, True
        try:
            ready = self._receive()
        finally:
            self.spent, self._starting = spent, False
        if ready.get("ready") is not True:
            raise _ChildFailed("the render process did not start")

    # -- frames, within the budget ------------------------------------------------------

    def _started(self) -> subprocess.Popen[bytes]:
        assert self._child is not None  # frames go only to a started child (`_start`)
        return self._child

    def _wait(self, readable: bool) -> None:
        """Until the child's pipe is ready, within the budget, asking `should_stop`."""
        child = self._started()
        fd = _stdout(child).fileno() if readable else _stdin(child).fileno()
        allowed = STARTUP_SECONDS if self._starting else self.limits.seconds
        while True:
            left = allowed - self.spent
            if left <= 0 and self._starting:
                raise _ChildFailed(f"the render process did not start in {allowed:g} s")
            if left <= 0:
                raise _ChildFailed(f"rendering took longer than {allowed:g} s")
            started = time.monotonic()
            pending = ([fd], []) if readable else ([], [fd])
            ready = any(select.select(*pending, [], min(left, CANCEL_POLL_SECONDS))[:2])
            self.spent += time.monotonic() - started
            if ready:
                return
            self._should_stop()

    def _send(self, message: dict[str, Any]) -> None:
        data = memoryview(encode(message))
        child = self._started()
        fd = _stdin(child).fileno()
        while data:
            self._wait(readable=False)
            try:
                data = data[os.write(fd, data) :]
            except BrokenPipeError:
                raise _ChildFailed(_death(child, self.limits)) from None

    def _read_into_buffer(self) -> None:
        self._wait(readable=True)
        child = self._started()
        chunk = os.read(_stdout(child).fileno(), 1024 * 1024)
        if not chunk:
            raise _ChildFailed(_death(child, self.limits))
        self._buffer += chunk

    def _receive(self) -> dict[str, Any]:
        while len(self._buffer) < HEADER.size:
            self._read_into_buffer()
        (size,) = HEADER.unpack_from(self._buffer)
        if size > MAX_FRAME_BYTES:
            raise _ChildFailed("the render process answered out of protocol")
        while len(self._buffer) < HEADER.size + size:
            self._read_into_buffer()
        body = self._buffer[HEADER.size : HEADER.size + size]
        self._buffer = self._buffer[HEADER.size + size :]
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested to exhaust this side
            raise _ChildFailed("the render process answered out of protocol") from None
        if not isinstance(answer, dict):
            raise _ChildFailed("the render process answered out of protocol")
        return answer
