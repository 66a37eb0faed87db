"""Cycles in graphs of names: services that depend on services, apps bound to apps.

A graph maps each node to the nodes it points to, in the order they are tried; callers sort
them, so that the cycle named is the same on every run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Graph = Mapping[str, Sequence[str]]


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
