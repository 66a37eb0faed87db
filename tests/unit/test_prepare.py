"""The order apps are prepared in (workers.deploy.prepare.binding_order), on plain snapshots."""

from __future__ import annotations

import pytest

from workers.deploy.prepare import PrepareError, binding_order


def app(name: str, **bindings: str) -> dict:
    return {"name": name, "bindings": bindings}


def test_every_app_comes_after_the_apps_it_binds_to():
    apps = [app("wp", db="mysql", cache="redis"), app("redis"), app("mysql"), app("lone")]

    assert [a["name"] for a in binding_order(apps)] == ["lone", "mysql", "redis", "wp"]


def test_a_binding_to_an_app_outside_the_snapshot_is_no_dependency():
    assert [a["name"] for a in binding_order([app("wp", db="gone")])] == ["wp"]


def test_a_binding_cycle_is_refused_naming_the_cycle():
    apps = [app("a", x="b"), app("b", y="c"), app("c", z="b")]

    with pytest.raises(PrepareError, match=r"^bindings form a cycle: b -> c -> b$"):
        binding_order(apps)
