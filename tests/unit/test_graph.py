"""Cycles in graphs of names (packages.graph), on plain mappings."""

from __future__ import annotations

import pytest

from packages.graph import Cycle, cycles, dependency_order, reachable, shortest_cycle

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


def test_dependency_order_puts_each_node_after_what_it_points_to():
    graph = {"web": ["db", "cache"], "db": [], "cache": ["db"], "worker": ["db", "elsewhere"]}

    order = dependency_order(graph)

    assert order == ["db", "cache", "web", "worker"]  # depth-first, in the graph's order
    assert "elsewhere" not in order  # not a key: left out


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        pytest.param({"a": ["a"]}, ["a", "a"], id="self"),
        pytest.param(
            {"x": [], "a": ["x", "b"], "b": ["c"], "c": ["a"]},
            ["a", "b", "c", "a"],
            id="behind a leaf",
        ),
        pytest.param({"r": ["a"], "a": ["b"], "b": ["a"]}, ["a", "b", "a"], id="below a root"),
        pytest.param({(1, 2): [(2, 1)], (2, 1): [(1, 2)]}, [(1, 2), (2, 1), (1, 2)], id="tuples"),
    ],
)
def test_dependency_order_names_the_cycle_alone(graph, cycle):
    with pytest.raises(Cycle) as caught:
        dependency_order(graph)

    assert caught.value.nodes == cycle
    assert str(caught.value) == " -> ".join(map(str, cycle))
