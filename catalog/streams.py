"""Concurrent streams (`follow=1`), bounded per token and per API process.

Each stream holds an API thread for as long as it runs, so a handful of them would fill every
thread. A stream takes a slot when it starts and gives it back when it ends, however it ends:
finished, cut by its time bound, or its client gone (`Slot.alive` notices a closed
connection at the stream's next poll, not only at its next write). Over either bound the
request is refused with 429 and Retry-After.

- per process (STREAMS_PER_PROCESS): a counter in this process; keep it below the server's
  threads per worker so that other requests are always served;
- per token (STREAMS_PER_TOKEN): in this process with `memory://` rate limit storage; with a
  Redis one (RATELIMIT_STORAGE_URL=redis://...) over every API process that shares it, as
  leases in a sorted set per token that each stream renews while it runs, so the slots of a
  process that died free themselves when their lease runs out.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from typing import Any, Protocol

from catalog.config import Settings
from catalog.errors import ServiceUnavailable, TooManyRequests

RETRY_AFTER_SECONDS = 5  # what a refused stream is told to wait: slots free as streams end
LEASE_SECONDS = 60.0  # a shared slot lasts this long unless its stream renews it
RENEW_SECONDS = 15.0  # how often a running stream renews its shared slot


class TokenSlots(Protocol):
    """Slots per token: taken (True) unless the token holds `limit`, renewed, given back."""

    def take(self, token: str, slot: str, limit: int) -> bool: ...
    def renew(self, token: str, slot: str) -> None: ...
    def give_back(self, token: str, slot: str) -> None: ...


class LocalTokenSlots:
    """Per-token slots counted in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, set[str]] = {}

    def take(self, token: str, slot: str, limit: int) -> bool:
        with self._lock:
            held = self._held.setdefault(token, set())
            if len(held) >= limit:
                return False
            held.add(slot)
            return True

    def renew(self, token: str, slot: str) -> None:
        """Nothing to renew: a slot of this process lives as long as the process."""

    def give_back(self, token: str, slot: str) -> None:
        with self._lock:
            held = self._held.get(token, set())
            held.discard(slot)
            if not held:
                self._held.pop(token, None)


# Drop the expired leases, count the rest, take one if there is room: atomically.
_TAKE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4])))
return 1
"""


class RedisTokenSlots:
    """Per-token slots shared by every API process on one Redis: leases in a sorted set."""

    def __init__(self, url: str, lease_seconds: float = LEASE_SECONDS) -> None:
        import redis

        self._errors = (redis.RedisError, OSError)
        # limits spells a Unix socket `redis+unix://`; the redis client, `unix://`.
        self._client = redis.Redis.from_url(url.replace("redis+unix://", "unix://", 1))
        self._take = self._client.register_script(_TAKE)
        self.lease = lease_seconds

    @staticmethod
    def _key(token: str) -> str:
        return f"catalog:streams:{token}"

    def take(self, token: str, slot: str, limit: int) -> bool:
        try:
            args: list[str | float] = [time.time(), slot, limit, self.lease]
            return bool(self._take(keys=[self._key(token)], args=args))
        except self._errors as exc:
            raise ServiceUnavailable(f"the rate limit storage does not answer: {exc}") from None

    def renew(self, token: str, slot: str) -> None:
        with contextlib.suppress(*self._errors):  # else the next renewal may reach the server
            self._client.zadd(self._key(token), {slot: time.time() + self.lease}, xx=True)
            self._client.expire(self._key(token), int(self.lease) + 1)

    def give_back(self, token: str, slot: str) -> None:
        with contextlib.suppress(*self._errors):  # else the lease runs out by itself
            self._client.zrem(self._key(token), slot)


def token_slots_for(storage_url: str) -> TokenSlots:
    """Shared slots when the rate limit storage is a Redis server, this process's otherwise."""
    if storage_url.startswith(("redis://", "rediss://", "redis+unix://")):
        return RedisTokenSlots(storage_url)
    return LocalTokenSlots()


def client_gone(environ: dict[str, Any]) -> bool:
    """Whether the client closed its connection (a stream's client sends nothing more)."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        return False  # not a plain socket (the test client): the server tells at the next write
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # connected, and nothing to read
    except ValueError:
        return False  # a TLS socket cannot peek: its next write tells
    except OSError:
        return True


class Slot:
    """One running stream's slot: `alive()` at each poll; `release()` once, when it ends."""

    def __init__(self, streams: Streams, token: str, environ: dict[str, Any]) -> None:
        self._streams, self._token, self._environ = streams, token, environ
        self.id = uuid.uuid4().hex
        self._renewed = time.monotonic()
        self._released = False

    def alive(self) -> bool:
        """False once the client has gone; renews the shared lease when it is due."""
        if client_gone(self._environ):
            return False
        if time.monotonic() - self._renewed >= RENEW_SECONDS:
            self._streams.tokens.renew(self._token, self.id)
            self._renewed = time.monotonic()
        return True

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._streams.give_back(self._token, self.id)


class Streams:
    """The API process's stream slots."""

    def __init__(self, per_process: int, per_token: int, tokens: TokenSlots) -> None:
        self.per_process, self.per_token, self.tokens = per_process, per_token, tokens
        self._lock = threading.Lock()
        self._running = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Streams:
        return cls(
            settings.streams_per_process,
            settings.streams_per_token,
            token_slots_for(settings.ratelimit_storage_url),
        )

    @property
    def running(self) -> int:
        return self._running

    def open(self, token: str, environ: dict[str, Any]) -> Slot:
        """A slot for a new stream of `token`; TooManyRequests over either bound."""
        slot = Slot(self, token, environ)
        with self._lock:
            if self._running >= self.per_process:
                raise _refused(f"this API process serves {self.per_process} streams already")
            self._running += 1
        try:
            taken = self.tokens.take(token, slot.id, self.per_token)
        except BaseException:
            self._leave()
            raise
        if not taken:
            self._leave()
            raise _refused(f"the token has {self.per_token} streams open already")
        return slot

    def give_back(self, token: str, slot_id: str) -> None:
        self.tokens.give_back(token, slot_id)
        self._leave()

    def _leave(self) -> None:
        with self._lock:
            self._running -= 1


def _refused(why: str) -> TooManyRequests:
    return TooManyRequests(
        f"too many streams: {why}; retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
