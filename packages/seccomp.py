"""A seccomp allowlist for the render child: after it, a process can compute and use its pipes.

Rendering needs memory, the two pipes it was given and a clock. Everything else (opening
a file such as the worker's `/proc/<pid>/environ` or the Docker socket, a network socket,
exec, fork, signals to other processes, ptrace) fails with EPERM, so even a sandbox escape
finds nothing to read and nowhere to write. The filter is a classic BPF program loaded
with prctl; x86-64 and arm64 are known (elsewhere `install` reports False, and the
render child refuses to serve).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
# Classic BPF opcodes: load a word at an absolute offset, jump if equal, return.
_LD_W_ABS, _JEQ_K, _RET_K = 0x20, 0x15, 0x06
_ARCH_OFFSET, _NR_OFFSET = 4, 0  # in struct seccomp_data

# Per architecture: its audit number, and what a rendering CPython calls: read and write
# its pipes, memory, signal handling, a clock, randomness, fstat, exit.
_ARCHES = {
    "x86_64": (0xC000003E, {
        "read": 0, "write": 1, "close": 3, "fstat": 5, "lseek": 8, "mmap": 9, "mprotect": 10,
        "munmap": 11, "brk": 12, "rt_sigaction": 13, "rt_sigprocmask": 14, "rt_sigreturn": 15,
        "sched_yield": 24, "mremap": 25, "madvise": 28, "nanosleep": 35, "getpid": 39,
        "exit": 60, "gettimeofday": 96, "getrusage": 98, "sigaltstack": 131, "gettid": 186,
        "futex": 202, "clock_gettime": 228, "clock_getres": 229, "clock_nanosleep": 230,
        "exit_group": 231, "newfstatat": 262, "getrandom": 318,
    }),
    "aarch64": (0xC00000B7, {
        "close": 57, "lseek": 62, "read": 63, "write": 64, "newfstatat": 79, "fstat": 80,
        "exit": 93, "exit_group": 94, "futex": 98, "nanosleep": 101, "clock_gettime": 113,
        "clock_getres": 114, "clock_nanosleep": 115, "sched_yield": 124, "sigaltstack": 132,
        "rt_sigaction": 134, "rt_sigprocmask": 135, "rt_sigreturn": 139, "getrusage": 165,
        "gettimeofday": 169, "getpid": 172, "gettid": 178, "brk": 214, "munmap": 215,
        "mremap": 216, "mmap": 222, "mprotect": 226, "madvise": 233, "getrandom": 278,
    }),
}  # fmt: skip


def _instruction(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(arch: int, numbers: list[int]) -> bytes:
    """Allow `numbers`, refuse any other call with EPERM; kill a process of another arch."""
    code = [
        _instruction(_LD_W_ABS, _ARCH_OFFSET),
        _instruction(_JEQ_K, arch, jt=1),
        _instruction(_RET_K, _RET_KILL_PROCESS),
        _instruction(_LD_W_ABS, _NR_OFFSET),
    ]
    for index, number in enumerate(numbers):
        # Equal: jump over the remaining tests and the refusal, to the allowing return.
        code.append(_instruction(_JEQ_K, number, jt=len(numbers) - index))
    code.append(_instruction(_RET_K, _RET_ERRNO | errno.EPERM))
    code.append(_instruction(_RET_K, _RET_ALLOW))
    return b"".join(code)


class _Program(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def supported() -> bool:
    """Whether this architecture's system call numbers are known here."""
    return platform.machine() in _ARCHES


def install() -> bool:
    """Confine this process to the allowlist for good; False on an architecture not known."""
    known = _ARCHES.get(platform.machine())
    if known is None:
        return False
    arch, table = known
    code = ctypes.create_string_buffer(program(arch, sorted(table.values())))
    prog = _Program(len(code.raw) // 8, ctypes.addressof(code))
    libc = ctypes.CDLL(None, use_errno=True)
    filter_address = ctypes.addressof(prog)
    for args in (
        (_PR_SET_NO_NEW_PRIVS, 1),
        (_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, filter_address),
    ):
        if libc.prctl(*(ctypes.c_ulong(a) for a in (*args, 0, 0, 0)[:5])) != 0:
            raise OSError(ctypes.get_errno(), "prctl: cannot install the seccomp filter")
    return True
