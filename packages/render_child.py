"""The render child: renders one deployment's templates under hard limits, then exits.

`packages.render_process` starts it with an empty environment and talks to it in
frames (a 4-byte length, then JSON) over its stdin and stdout. Before it reads a
single template it gives up root, caps its own memory, CPU time, open files and
processes, and allows itself only the system calls rendering needs (`packages.seccomp`):
whatever a template does, it cannot outgrow them or reach outside, and the parent's
wall-clock limit ends it. A template gets no more than the context it was sent.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import struct
import sys
from typing import Any, BinaryIO

HEADER = struct.Struct(">I")
#: Largest frame either side accepts: a rendered value (1 MiB of UTF-8) escaped in JSON.
MAX_FRAME_BYTES = 8 * 1024 * 1024
#: Who the child becomes when started as root: the classic unprivileged "nobody".
NOBODY = 65534


def encode(message: dict[str, Any]) -> bytes:
    """One frame: the JSON body's length, then the body."""
    body = json.dumps(message, ensure_ascii=False).encode("utf-8")
    return HEADER.pack(len(body)) + body


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    """The next frame from a blocking stream; None at its end."""
    header = _read_exact(stream, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {size} bytes is larger than {MAX_FRAME_BYTES}")
    body = _read_exact(stream, size)
    return None if body is None else json.loads(body)


def _address_space() -> int:
    """Bytes of address space this process maps now (the interpreter and its imports)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _drop_root() -> None:
    if os.geteuid() == 0:  # as root the limits below could be raised again
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def confine(memory_mb: int, cpu_seconds: int) -> None:
    """Give up root, then cap memory (beyond what is mapped now), CPU, files and processes."""
    memory = _address_space() + memory_mb * 1024 * 1024
    _drop_root()
    for limit, soft, hard in (
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_AS, memory, memory),
        (resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1),  # SIGXCPU, then SIGKILL
        (resource.RLIMIT_NOFILE, 3, 3),  # stdin, stdout, stderr: nothing new can be opened
        (resource.RLIMIT_NPROC, 0, 0),  # no fork (root would not be bound: it is gone)
    ):
        resource.setrlimit(limit, (soft, hard))


def _answer(render, source: Any, memory_mb: int) -> dict[str, Any]:
    from packages.errors import RenderError

    if render is None or not isinstance(source, str):
        return {"error": "the render process was sent no context or no template"}
    try:
        return {"text": render(source, service="", field="")}
    except RenderError as exc:
        return {"error": exc.problems[0].message, "variable": exc.variable}
    except MemoryError:
        return {"error": f"the template needs more than {memory_mb} MB of memory"}


def serve(stdin: BinaryIO, stdout: BinaryIO, memory_mb: int) -> None:
    """Answer every template with its text or its error until stdin ends."""
    from packages.render import in_process

    render = None
    stdout.write(encode({"ready": True}))
    stdout.flush()
    while (message := read_frame(stdin)) is not None:
        if "context" in message:
            render = in_process(message["context"])
            continue
        stdout.write(encode(_answer(render, message.get("source"), memory_mb)))
        stdout.flush()


def main(argv: list[str]) -> None:
    """`<memory MB> <CPU seconds>`: import everything, confine, then serve."""
    # Imported before the limits, which allow no file to be opened: the sandbox, and what
    # Jinja imports only when needed (string literals' codec, wordwrap, pprint, the traceback
    # of a failed template).
    import encodings.idna
    import encodings.unicode_escape  # noqa: F401
    import pprint  # noqa: F401
    import textwrap  # noqa: F401

    import jinja2.debug  # noqa: F401

    import packages.render  # noqa: F401
    from packages import seccomp

    if not seccomp.supported():  # fail closed: no template renders unconfined
        raise SystemExit(
            f"the render process cannot confine itself on {platform.machine()} (no seccomp "
            "allowlist for it): templates are not rendered"
        )
    memory_mb, cpu_seconds = int(argv[0]), int(argv[1])
    confine(memory_mb, cpu_seconds)
    seccomp.install()  # from here on: no file, socket, exec, fork or signal to another
    serve(sys.stdin.buffer, sys.stdout.buffer, memory_mb)


if __name__ == "__main__":
    main(sys.argv[1:])
