"""Cycles in graphs of names (packages.graph), on plain mappings."""

from __future__ import annotations

import pytest

from packages.graph import cycles, reachable, shortest_cycle

# a -> b -> c -> a, with a shortcut c -> a and a tail c -> d
RING = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": []}


def test_reachable_follows_edges_and_holds_the_start_only_on_a_cycle():
    assert reachable(RING, "a") == {"a", "b", "c", "d"}
    assert reachable(RING, "d") == set()
    assert reachable({"x": ["y"], "y": []}, "x") == {"y"}
    assert reachable({}, "missing") == set()


@pytest.mark.parametrize(
    ("graph", "start", "expected"),
    [
        pytest.param(RING, "a", ["a", "b", "c", "a"], id="ring"),
        pytest.param(RING, "c", ["c", "a", "b", "c"], id="from-another-node"),
        pytest.param(RING, "d", None, id="not-on-a-cycle"),
        pytest.param({"a": ["a"]}, "a", ["a", "a"], id="self-edge"),
        pytest.param({"a": ["b", "c"], "b": ["c"], "c": ["a"]}, "a", ["a", "c", "a"], id="short"),
        pytest.param({"a": ["b", "c"], "b": ["a"], "c": ["a"]}, "a", ["a", "b", "a"], id="first"),
        pytest.param({"a": ["b"]}, "a", None, id="edge-to-an-unknown-node"),
    ],
)
def test_shortest_cycle_through_a_node(graph, start, expected):
    assert shortest_cycle(graph, start) == expected


def test_cycles_names_one_per_group_from_its_first_node():
    graph = {
        "web": ["api"],
        "api": ["db", "web"],
        "db": ["api"],
        "cache": ["cache"],
        "worker": ["db"],
        "lone": [],
    }

    assert cycles(graph) == [["api", "db", "api"], ["cache", "cache"]]


def test_a_graph_without_cycles_has_none():
    assert cycles({"a": ["b", "c"], "b": ["c"], "c": []}) == []
