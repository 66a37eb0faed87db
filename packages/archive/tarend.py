"""The end of a tar stream: what follows the last member must be zero blocks and nothing else.

Python's tarfile stops quietly at the first zero block, and also at a header whose checksum
does not add up, so entries after either are never seen by a reader that trusts it, while
another reader (the engine's, loading an image) may go on and unpack them. Every tar the
catalog inspects is therefore read to its very end: tarfile's own stream is recorded, and
after its last member the rest must be zeros.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable
from typing import BinaryIO

from packages.archive.content import READ_CHUNK


class Recent:
    """The last chunks a stream delivered, by offset, to find what was read past a point."""

    def __init__(self, start: int = 0, keep: int = 16) -> None:
        self.delivered = start  # the offset of the next byte
        self._chunks: deque[tuple[int, bytes]] = deque(maxlen=keep)

    def record(self, chunk: bytes) -> bytes:
        self._chunks.append((self.delivered, chunk))
        self.delivered += len(chunk)
        return chunk

    def since(self, offset: int) -> bytes | None:
        """What was delivered from `offset` on; None when that is no longer kept."""
        if offset >= self.delivered:
            return b""
        if not self._chunks or self._chunks[0][0] > offset:
            return None
        return b"".join(chunk[max(0, offset - start) :] for start, chunk in self._chunks)


class Recording(io.RawIOBase):
    """A stream that remembers its last chunks (`recent`): tarfile reads from it."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.recent = Recent()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self.recent.record(self._stream.read(size))

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def end_problem(tail: bytes | None, read: Callable[[int], bytes], marker: bool) -> str | None:
    """What is wrong after a tar's last member (`tail`: what was read from the end-of-archive
    block on, `read`: the rest of the stream), or None. With `marker`, at least the two zero
    blocks of the end-of-archive marker must be there."""
    if tail is None:
        return "cannot locate the end of the tar archive"
    zeros = 0
    while tail:
        if tail.count(0) != len(tail):
            return (
                "non-zero data after the end of the tar archive (a hidden entry after a zero "
                "block, a header with a bad checksum, concatenated archives or garbage)"
            )
        zeros += len(tail)
        tail = read(READ_CHUNK)
    if marker and zeros < 2 * 512:
        return "tar archive has no end-of-archive marker: truncated?"
    return None
