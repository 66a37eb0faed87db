"""`catalogctl up` (or `make run`'s script) as a process: its output read as it comes, its
children found from what it prints, Ctrl-C sent to it."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

READY_LINE = "Ctrl-C stops everything"
CHILD_LINE = re.compile(r"^  (api|worker|tracker)\s+pid (\d+)\s+log ")


class UpProcess:
    def __init__(self, command: list, env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, seconds: float = 120) -> str:
        """The first line (from now on) holding `text`; fails with the output so far."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"`up` exited ({self.process.wait()}):\n{self.output}")
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} from `up` within {seconds} s:\n{self.output}")

    def ready(self) -> UpProcess:
        self.wait_for(READY_LINE)
        return self

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def children(self) -> dict[str, int]:
        return {m[1]: int(m[2]) for line in self.lines if (m := CHILD_LINE.match(line))}

    def interrupt(self, seconds: float = 60) -> int:
        """Ctrl-C; the exit code once `up` and its output are done."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.wait(seconds)

    def wait(self, seconds: float = 60) -> int:
        """The exit code, once `up` has ended on its own and its output is read."""
        try:
            code = self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        self._reader.join(timeout=10)
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.lines.append(line)
        self.process.stdout.close()
        return code


def running(pid: int) -> bool:
    """Whether `pid` is still one of the catalog's processes (not reaped, not reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return b"catalogctl" in cmdline and state != "Z"
