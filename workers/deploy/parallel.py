"""Run dependent items in parallel: each starts as soon as everything it depends on succeeded."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Set
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from queue import SimpleQueue
from typing import Generic, TypeVar

from packages.graph import Cycle, dependency_order

K = TypeVar("K", bound=Hashable)


@dataclass
class Outcome(Generic[K]):
    succeeded: list[K] = field(default_factory=list)  # in completion order
    failed: dict[K, BaseException] = field(default_factory=dict)
    not_started: list[K] = field(default_factory=list)  # in the order of `items`

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_started


def run_in_waves(
    items: Mapping[K, Set[K]],
    func: Callable[[K], None],
    *,
    max_workers: int,
    cancelled: Callable[[], bool] = lambda: False,
) -> Outcome[K]:
    """Call `func` on every item, each after all its dependencies succeeded.

    Independent items run in parallel, at most `max_workers` at a time; a free
    worker takes the next ready item without waiting for a whole wave. After the
    first failure, or once `cancelled()` returns true, nothing new starts; the
    running items are waited for and the rest reported as not started.
    Dependencies that are not themselves items count as satisfied. Raises
    ValueError on a dependency cycle, before anything runs.
    """
    if max_workers < 1:
        raise ValueError("max_workers must be at least 1")
    deps = {item: {d for d in needs if d in items} for item, needs in items.items()}
    _check_acyclic(items, deps)

    outcome: Outcome[K] = Outcome()
    waiting = list(deps)  # keeps the caller's order, so starts are deterministic
    done: set[K] = set()
    running = 0
    # Done-callbacks fire as each call returns, so `succeeded` is in true completion order.
    finished: SimpleQueue[tuple[K, Future[None]]] = SimpleQueue()
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="run-in-waves") as pool:
        while True:
            if not outcome.failed and not cancelled():
                # Submit only what a free worker runs at once: an item queued inside the
                # pool would still start after a failure.
                for item in [i for i in waiting if deps[i] <= done]:
                    if running >= max_workers:
                        break
                    waiting.remove(item)
                    running += 1
                    future = pool.submit(func, item)
                    future.add_done_callback(partial(_report, finished, item))
            if not running:
                break
            item, future = finished.get()
            running -= 1
            error = future.exception()
            if error is None:
                done.add(item)
                outcome.succeeded.append(item)
            else:
                outcome.failed[item] = error
    outcome.not_started = waiting
    return outcome


def _check_acyclic(items: Mapping[K, object], deps: Mapping[K, Set[K]]) -> None:
    """Raise ValueError naming a cycle, if the graph has one."""
    position = {item: index for index, item in enumerate(items)}
    # In the caller's order, so the cycle named is the same on every run.
    graph = {item: sorted(deps[item], key=position.__getitem__) for item in deps}
    try:
        dependency_order(graph)
    except Cycle as exc:
        raise ValueError(f"dependency cycle: {exc}") from None


def _report(finished: SimpleQueue[tuple[K, Future[None]]], item: K, future: Future[None]) -> None:
    finished.put((item, future))
