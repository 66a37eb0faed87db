"""The pure rules of an environment's draft: secrets, bindings, cycles, pending changes, status."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest

from catalog.services.environment_rules import (
    MASK,
    DraftApp,
    app_status,
    binders_of,
    canonical_spec,
    cycle_problem,
    cycle_problems,
    cycle_through,
    has_pending_changes,
    incoming_problems,
    mask_secrets,
    missing_required,
    outgoing_problems,
    restore_secrets,
    secret_paths,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "password": {"type": "string", "x-secret": True},
        "replicas": {"type": "integer"},
        "db": {
            "type": "object",
            "properties": {"token": {"type": "string", "x-secret": True}, "host": {}},
        },
        "a.b": {"type": "string", "x-secret": True},
        "vault": {"type": "object", "x-secret": True, "properties": {"key": {"x-secret": True}}},
    },
}


# -- secrets ---------------------------------------------------------------------------------


ALL_SET = {
    "password": "p",
    "replicas": 2,
    "db": {"token": "t", "host": "h"},
    "a.b": "x",
    "vault": {"key": "k"},
}


def test_secret_paths_are_tuples_so_dotted_names_stay_whole():
    assert secret_paths(ALL_SET, [SCHEMA]) == {
        ("password",),
        ("db", "token"),
        ("a.b",),
        ("vault",),  # nothing inside a secret: it is hidden whole
    }
    assert secret_paths(ALL_SET, [None]) == frozenset()
    assert secret_paths(ALL_SET, [{"type": "object", "properties": "odd"}]) == frozenset()


def test_a_schema_marking_all_parameters_secret_hides_each_of_them():
    assert secret_paths({"a": 1, "b": {}}, [{"type": "object", "x-secret": True}]) == {
        ("a",),
        ("b",),
    }


def test_secrets_inside_lists_are_masked_and_restored_by_index():
    schema = {"type": "object", "properties": {"keys": {"items": {"x-secret": True}}}}
    values = {"keys": ["k1", "k2"]}

    assert mask_secrets(values, secret_paths(values, [schema])) == {"keys": [MASK, MASK]}
    sent = {"keys": [MASK, "new"]}
    restored, missing = restore_secrets(sent, values, secret_paths(sent, [schema]))
    assert (restored, missing) == ({"keys": ["k1", "new"]}, [])


def test_mask_hides_every_set_secret_and_leaves_the_rest_and_the_input_alone():
    values = copy.deepcopy(ALL_SET)

    masked = mask_secrets(values, secret_paths(values, [SCHEMA]))

    assert masked == {
        "password": MASK,
        "replicas": 2,
        "db": {"token": MASK, "host": "h"},
        "a.b": MASK,
        "vault": MASK,  # a secret object is hidden whole
    }
    assert values["db"]["token"] == "t"


def test_mask_skips_unset_secrets():
    values = {"replicas": 1, "db": {}}
    assert mask_secrets(values, secret_paths(values, [SCHEMA])) == {
        "replicas": 1,
        "db": {},
    }


def test_restore_puts_the_stored_secret_back_where_the_mask_was_sent():
    stored = {"password": "old", "db": {"token": "t"}}

    sent = {"password": MASK, "db": {"token": "new"}, "replicas": 3}
    restored, missing = restore_secrets(sent, stored, secret_paths(sent, [SCHEMA]))

    assert restored == {"password": "old", "db": {"token": "new"}, "replicas": 3}
    assert missing == []


def test_restore_reports_masks_with_nothing_stored_and_ignores_masks_elsewhere():
    sent = {"password": MASK, "replicas": MASK, "vault": MASK}
    restored, missing = restore_secrets(sent, {}, secret_paths(sent, [SCHEMA]))

    assert missing == [("password",), ("vault",)]
    assert restored["replicas"] == MASK  # not a secret: a value like any other


# -- bindings --------------------------------------------------------------------------------

DB_SLOT = {"db": {"package": "org.db", "version": ">=8.0.0 <9.0.0", "required": True}}


def draft(*apps: DraftApp) -> dict[str, DraftApp]:
    return {a.name: a for a in apps}


def web(bindings=None, version="1.0.0") -> DraftApp:
    return DraftApp("web", "org.web", version, bindings or {}, DB_SLOT)


def test_a_good_binding_has_no_problem():
    apps = draft(web({"db": "db"}), DraftApp("db", "org.db", "8.1.0"))

    assert outgoing_problems(apps["web"], apps) == []
    assert incoming_problems(apps["db"], apps) == []
    assert cycle_problems(apps) == []


@pytest.mark.parametrize(
    ("bindings", "others", "fragment"),
    [
        ({"cache": "db"}, [DraftApp("db", "org.db", "8.1.0")], "no binding slot 'cache'"),
        ({"db": "db"}, [], "there is no app 'db'"),
        ({"db": "db"}, [DraftApp("db", "org.other", "8.1.0")], "needs an app of package org.db"),
        ({"db": "db"}, [DraftApp("db", "org.db", "9.0.0")], "needs org.db >=8.0.0 <9.0.0"),
        ({"db": "web"}, [], "cannot bind to itself"),
    ],
)
def test_each_bad_binding_is_reported_on_its_slot(bindings, others, fragment):
    apps = draft(web(bindings), *others)

    [problem] = outgoing_problems(apps["web"], apps)

    assert problem.app == "web"
    assert problem.path == f"bindings.{next(iter(bindings))}"
    assert fragment in problem.message


def test_an_unresolved_target_is_not_blamed_for_its_version():
    apps = draft(web({"db": "db"}), DraftApp("db", "org.db", None))

    assert outgoing_problems(apps["web"], apps) == []


def test_incoming_problems_name_the_binder_when_a_target_version_leaves_the_range():
    apps = draft(web({"db": "db"}), DraftApp("db", "org.db", "9.0.0"))

    [problem] = incoming_problems(apps["db"], apps)

    assert (problem.app, problem.path) == ("db", "version")
    assert "'web'" in problem.message and "'db'" in problem.message


def test_missing_required_lists_unbound_required_slots_only():
    slots = {"db": {"package": "org.db", "required": True}, "cache": {"package": "org.c"}}
    optional = {"log": {"package": "org.l", "required": False}}
    app = DraftApp("web", "org.web", "1.0.0", {"cache": "c"}, {**slots, **optional})

    assert [(p.path, p.message) for p in missing_required(app)] == [
        ("bindings.db", "slot 'db' is required but not bound")
    ]


def ring(*edges: tuple[str, str]) -> dict[str, DraftApp]:
    names = sorted({n for edge in edges for n in edge})
    slots = {"peer": {"package": "org.peer"}, "other": {"package": "org.peer"}}
    bindings: dict[str, dict[str, str]] = {n: {} for n in names}
    for source, target in edges:
        bindings[source]["peer" if "peer" not in bindings[source] else "other"] = target
    return {n: DraftApp(n, "org.peer", "1.0.0", bindings[n], slots) for n in names}


def test_cycle_through_finds_the_shortest_cycle():
    apps = ring(("a", "b"), ("b", "c"), ("c", "a"), ("a", "c"))

    assert cycle_through("a", apps) == ["a", "c", "a"]
    assert cycle_through("b", apps) == ["b", "c", "a", "b"]
    assert cycle_through("a", ring(("a", "b"))) is None
    assert cycle_through("a", ring(("a", "a"))) == ["a", "a"]


def test_cycle_problem_points_at_the_binding_that_starts_it():
    apps = ring(("a", "b"), ("b", "a"))

    problem = cycle_problem(apps["a"], apps)

    assert (problem.app, problem.path, problem.message) == (
        "a",
        "bindings.peer",
        "binding cycle: a -> b -> a",
    )
    assert cycle_problem(apps["a"], ring(("a", "a"))) is None  # self-binding: its own message


def test_cycle_problems_reports_each_cycle_once():
    apps = ring(("a", "b"), ("b", "a"), ("c", "d"), ("d", "e"), ("e", "c"), ("f", "a"))

    assert [p.message for p in cycle_problems(apps)] == [
        "binding cycle: a -> b -> a",
        "binding cycle: c -> d -> e -> c",
    ]


def test_binders_of_names_every_other_app_and_slot():
    apps = ring(("a", "c"), ("b", "c"), ("c", "c"))

    assert binders_of("c", apps.values()) == [("a", "peer"), ("b", "peer")]


# -- pending changes -------------------------------------------------------------------------

APP = {
    "name": "web",
    "package": "org.web",
    "version": "1.0.0",
    "parameters": {"a": 1},
    "bindings": {},
}


def test_pending_changes_compare_the_canonical_shape_only():
    deployed = {
        "settings": {"x": 1},
        "apps": [{**APP, "digest": "sha256:00", "manifest": {"name": "org.web"}}],
    }

    assert not has_pending_changes(canonical_spec({"x": 1}, [APP]), deployed)
    assert has_pending_changes(canonical_spec({"x": 2}, [APP]), deployed)
    assert has_pending_changes(canonical_spec({"x": 1}, [{**APP, "version": "1.0.1"}]), deployed)
    assert has_pending_changes(canonical_spec({"x": 1}, [{**APP, "parameters": {}}]), deployed)
    assert has_pending_changes(canonical_spec({"x": 1}, []), deployed)


def test_app_order_does_not_matter():
    other = {**APP, "name": "db"}
    deployed = {"settings": {}, "apps": [APP, other]}

    assert not has_pending_changes(canonical_spec(None, [other, APP]), deployed)


def test_never_deployed_is_pending_only_with_apps():
    assert not has_pending_changes(canonical_spec({"x": 1}, []), None)
    assert has_pending_changes(canonical_spec({}, [APP]), None)


# -- app status ------------------------------------------------------------------------------


@dataclass
class Seen:
    state: str = "running"
    health: str | None = None
    exit_code: int | None = None
    oom_killed: bool = False


@pytest.mark.parametrize(
    ("deployed", "deployment", "containers", "expected"),
    [
        (False, "succeeded", [Seen()], "pending"),
        (True, None, [], "pending"),
        (True, "queued", [], "deploying"),
        (True, "running", [], "deploying"),
        (True, "succeeded", [], "running"),
        (True, "failed", [], "failed"),
        (True, "rolled_back", [], "failed"),
        (True, "cancelled", [], "stopped"),
        (True, "succeeded", [Seen(), Seen()], "running"),
        (True, "succeeded", [Seen(health="healthy"), Seen(health="healthy")], "healthy"),
        (True, "succeeded", [Seen(health="healthy"), Seen()], "running"),
        (True, "succeeded", [Seen(health="healthy"), Seen(health="starting")], "deploying"),
        (True, "succeeded", [Seen(), Seen(state="created")], "deploying"),
        (True, "succeeded", [Seen(health="unhealthy"), Seen(state="created")], "unhealthy"),
        (True, "succeeded", [Seen(state="restarting")], "unhealthy"),
        (True, "succeeded", [Seen(state="exited", exit_code=0)], "stopped"),
        (True, "succeeded", [Seen(state="paused")], "stopped"),
        (True, "succeeded", [Seen(state="stopped", exit_code=137), Seen()], "stopped"),
        (True, "succeeded", [Seen(state="exited", exit_code=1), Seen()], "failed"),
        (True, "succeeded", [Seen(state="exited", exit_code=0, oom_killed=True)], "failed"),
        (True, "succeeded", [Seen(state="dead")], "failed"),
        (True, "succeeded", [Seen(state="missing"), Seen()], "failed"),
        (True, "succeeded", [Seen(state="crashloop"), Seen(state="dead")], "crashloop"),
    ],
)
def test_app_status(deployed, deployment, containers, expected):
    assert app_status(deployed, deployment, containers) == expected
