"""Running a package's command in a container by exec, within a time limit and an output bound.

The command's processes carry a marker in their environment; when the time is up, a
second exec kills every process of the container that carries it (children included,
which inherit it), and the worker stops reading. Of the output only the first and the
last `OUTPUT_KEEP` bytes are kept, with a note of how much was cut between them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded

from workers.engine import Engine, Stream

log = logging.getLogger(__name__)

OUTPUT_KEEP = 4096  # bytes kept from the start, and again from the end, of an output
MARKER = "CATALOG_ACTION_TASK"  # the environment variable that marks an action's processes
KILL_WAIT_SECONDS = 5.0  # how long the output may take to end once the processes are killed
# Kills every process whose environment holds the marker (`$0`) set to `$1`. It needs a
# shell and grep in the image, as the commands of actions usually do.
_KILL_SCRIPT = (
    'for d in /proc/[0-9]*; do grep -qszxF "$0=$1" "$d/environ" && kill -9 "${d#/proc/}";'
    " done; true"
)


class HeadTail:
    """The first and last `keep` bytes of a stream, and how many bytes it had in all."""

    def __init__(self, keep: int = OUTPUT_KEEP) -> None:
        self.keep = keep
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.keep - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        del self.tail[: max(len(self.tail) - self.keep, 0)]

    @property
    def cut(self) -> int:
        """Bytes dropped between the head and the tail."""
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        if not self.cut:
            return (self.head + self.tail).decode("utf-8", errors="replace")
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        return f"{head}\n[... {self.cut} bytes of output cut ...]\n{tail}"


@dataclass(frozen=True)
class ExecResult:
    """How a command ended: its exit code (None if killed or unknown) and kept output."""

    exit_code: int | None
    output: str
    cut: int  # bytes of output left out of `output`
    stopped: str = ""  # why it was killed: "" when it ended on its own


def run_bounded(
    engine: Engine,
    container_id: str,
    command: Sequence[str],
    *,
    environment: Mapping[str, str],
    timeout: float,
    marker: str,
    keep: int = OUTPUT_KEEP,
) -> ExecResult:
    """Run `command` in the container for at most `timeout` seconds; past it (or past the
    task's own time limit) its processes are killed."""
    exec_id, stream = engine.exec_start(container_id, command, {**environment, MARKER: marker})
    output = HeadTail(keep)
    reader = threading.Thread(target=_read, args=(stream, output), daemon=True)
    reader.start()
    stopped = ""
    try:
        reader.join(timeout)
        if reader.is_alive():
            stopped = f"the command ran past its timeout of {timeout:g} s and was killed"
    except SoftTimeLimitExceeded:
        stopped = "the action ran past the task time limit and was killed"
    if stopped:
        _kill(engine, container_id, marker)
        reader.join(KILL_WAIT_SECONDS)
        with contextlib.suppress(Exception):
            stream.close()  # processes that escaped the kill hold the worker no longer
        return ExecResult(None, output.text(), output.cut, stopped)
    return ExecResult(engine.exec_exit_code(exec_id), output.text(), output.cut)


def _read(stream: Stream[bytes], output: HeadTail) -> None:
    # Ends when the command's output closes, or with an error once the stream is closed.
    with contextlib.suppress(Exception):
        for chunk in stream:
            output.add(chunk)


def _kill(engine: Engine, container_id: str, marker: str) -> None:
    try:
        engine.exec_run(container_id, ["sh", "-c", _KILL_SCRIPT, MARKER, marker])
    except Exception as exc:  # the container may be gone or have no shell: report, go on
        log.warning("could not kill the processes of action %s: %s", marker, exc)
