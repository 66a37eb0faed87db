"""Cycles and orders in dependency graphs: services that depend on services, apps bound to
apps, containers started after containers.

A graph maps each node to the nodes it points to, in the order they are tried; callers sort
them, so that the cycle named is the same on every run.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Generic, TypeVar

Graph = Mapping[str, Sequence[str]]
N = TypeVar("N", bound=Hashable)


class Cycle(ValueError, Generic[N]):
    """The graph has a cycle: `nodes` is one, as [first, ..., first]."""

    def __init__(self, nodes: list[N]) -> None:
        super().__init__(" -> ".join(map(str, nodes)))
        self.nodes = nodes


def dependency_order(graph: Mapping[N, Iterable[N]]) -> list[N]:
    """The graph's nodes, each after every node it points to; `Cycle` when there is no such
    order. Depth-first from each node in the graph's order, its edges in their order; edges to
    nodes that are not keys of the graph are left out."""
    order: list[N] = []
    done: set[N] = set()

    def edges(node: N) -> Iterator[N]:
        return (target for target in graph[node] if target in graph)

    for root in graph:
        if root in done:
            continue
        path: list[N] = [root]
        stack = [edges(root)]
        while stack:
            target = next(stack[-1], None)
            if target is None:
                stack.pop()
                node = path.pop()
                done.add(node)
                order.append(node)
            elif target in path:
                raise Cycle([*path[path.index(target) :], target])
            elif target not in done:
                path.append(target)
                stack.append(edges(target))
    return order


def reachable(graph: Graph, start: str) -> set[str]:
    """Every node a path of one or more edges leads to from `start` (itself only on a cycle)."""
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def shortest_cycle(graph: Graph, start: str) -> list[str] | None:
    """The shortest cycle through `start` as [start, ..., start], or None if there is none.

    Breadth-first from `start` until an edge leads back to it; of equally short cycles, the
    one whose nodes come first in the graph's order.
    """
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in graph.get(node, ()):
                if target == start:
                    return [*_path_to(parents, node, start), start]
                if target not in parents:
                    parents[target] = node
                    following.append(target)
        frontier = following
    return None


def _path_to(parents: Mapping[str, str], node: str, start: str) -> list[str]:
    path = [node]
    while path[-1] != start:
        path.append(parents[path[-1]])
    return path[::-1]


def cycles(graph: Graph) -> list[list[str]]:
    """One shortest cycle per group of nodes that reach one another, through the group's first
    node by name; groups without a cycle (a lone node without a self-edge) give none."""
    reach = {node: reachable(graph, node) for node in graph}
    found: list[list[str]] = []
    grouped: set[str] = set()
    for node in sorted(graph):
        if node in grouped or node not in reach[node]:
            continue
        grouped |= {other for other in reach[node] if node in reach.get(other, ())}
        cycle = shortest_cycle(graph, node)
        assert cycle is not None  # the node reaches itself
        found.append(cycle)
    return found
