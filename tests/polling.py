"""Waiting in tests: poll a condition, bounded, and say what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T],
    seconds: float,
    what: str | Callable[[], str],
    every: float = 0.1,
) -> T:
    """Poll `check` until it returns something true (returned); fail after `seconds`.

    `what` names the expectation; a callable is asked only on failure (e.g. for a log).
    """
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {what() if callable(what) else what}")
        time.sleep(every)
