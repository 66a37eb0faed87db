"""The deploy planner on plain values (B17): exact actions for each kind of change."""

from __future__ import annotations

import pytest

from workers.deploy.planner import (
    DesiredContainer,
    ObservedContainer,
    Plan,
    Step,
    Strategy,
    plan,
)

REVISION = 2
FENCING = 5


def want(
    slot: str, config_hash: str = "h1", *, ports: bool = False, deps: tuple[str, ...] = ()
) -> DesiredContainer:
    """`want("wp/web/1", deps=("mysql/db",))`: a desired container by slot name."""
    app, service, replica = _slot(slot)
    return DesiredContainer(
        app=app,
        service=service,
        replica=replica,
        config_hash=config_hash,
        publishes_ports=ports,
        depends_on=frozenset(tuple(d.split("/")) for d in deps),
    )


def seen(
    cid: str,
    slot: str | None,
    config_hash: str | None = "h1",
    *,
    revision: int | None = 1,
    fencing: int | None = 1,
    running: bool = True,
    labels: tuple[str | None, str | None, int | None] | None = None,
) -> ObservedContainer:
    """An observed container; `labels` overrides (app, service, replica) for garbled ones."""
    app, service, replica = labels if labels is not None else _slot(slot or "")
    return ObservedContainer(
        id=cid,
        name=f"name-{cid}",
        app=app,
        service=service,
        replica=replica,
        revision=revision,
        fencing=fencing,
        config_hash=config_hash,
        running=running,
    )


def _slot(slot: str) -> tuple[str, str, int]:
    app, service, *replica = slot.split("/")
    return app, service, int(replica[0]) if replica else 0


def slot_of(step: Step) -> str:
    return f"{step.app}/{step.service}/{step.replica}"


def summary(result: Plan) -> dict[str, list[tuple]]:
    """The plan as comparable rows, dropping empty sections."""
    rows = {
        "keep": [(slot_of(s), s.container_id) for s in result.keep],
        "start": [(s.strategy.name, slot_of(s), s.container_id, s.reason) for s in result.start],
        "remove_now": [(s.container_id, s.reason) for s in result.remove_now],
        "remove_after": [(s.container_id, s.reason) for s in result.remove_after],
    }
    return {section: found for section, found in rows.items() if found}


def run(desired: list[DesiredContainer], observed: list[ObservedContainer]) -> Plan:
    return plan(desired, observed, revision=REVISION, fencing=FENCING)


FIVE = ["shop/web", "shop/api", "shop/worker", "shop/db", "shop/cache"]

CASES = [
    pytest.param(
        [want("wp/web"), want("wp/db"), want("mysql/db")],
        [],
        {
            "start": [
                ("START_BESIDE", "mysql/db/0", None, "new app"),
                ("START_BESIDE", "wp/db/0", None, "new app"),
                ("START_BESIDE", "wp/web/0", None, "new app"),
            ],
        },
        id="first deploy: everything new",
    ),
    pytest.param(
        [want("wp/web"), want("wp/db")],
        [seen("c-web", "wp/web"), seen("c-db", "wp/db")],
        {"keep": [("wp/db/0", "c-db"), ("wp/web/0", "c-web")]},
        id="unchanged: all kept, whatever their revision",
    ),
    pytest.param(
        [want("wp/web", "h2"), want("wp/db")],
        [seen("c-web", "wp/web"), seen("c-db", "wp/db")],
        {
            "keep": [("wp/db/0", "c-db")],
            "start": [("START_BESIDE", "wp/web/0", "c-web", "config changed")],
            "remove_after": [("c-web", "replaced: config changed")],
        },
        id="spec change of one service: only that one replaced",
    ),
    pytest.param(
        [want(s, "h2" if s in ("shop/api", "shop/db") else "h1") for s in FIVE],
        [seen(f"c-{s.split('/')[1]}", s) for s in FIVE],
        {
            "keep": [
                ("shop/cache/0", "c-cache"),
                ("shop/web/0", "c-web"),
                ("shop/worker/0", "c-worker"),
            ],
            "start": [
                ("START_BESIDE", "shop/api/0", "c-api", "config changed"),
                ("START_BESIDE", "shop/db/0", "c-db", "config changed"),
            ],
            "remove_after": [
                ("c-api", "replaced: config changed"),
                ("c-db", "replaced: config changed"),
            ],
        },
        id="settings change affecting two of five services: exactly those two",
    ),
    pytest.param(
        [want("wp/web/0"), want("wp/web/1"), want("wp/web/2")],
        [seen("c0", "wp/web/0")],
        {
            "keep": [("wp/web/0", "c0")],
            "start": [
                ("START_BESIDE", "wp/web/1", None, "new replica 1"),
                ("START_BESIDE", "wp/web/2", None, "new replica 2"),
            ],
        },
        id="scale up 1->3: two new replicas, the first kept",
    ),
    pytest.param(
        [want("wp/web/0")],
        [seen("c0", "wp/web/0"), seen("c1", "wp/web/1"), seen("c2", "wp/web/2")],
        {
            "keep": [("wp/web/0", "c0")],
            "remove_after": [
                ("c1", "orphan: replica 1 scaled away"),
                ("c2", "orphan: replica 2 scaled away"),
            ],
        },
        id="scale down 3->1: extra replicas removed after",
    ),
    pytest.param(
        [want("wp/web")],
        [seen("c-web", "wp/web"), seen("c-old", "blog/web"), seen("c-old-db", "blog/db")],
        {
            "keep": [("wp/web/0", "c-web")],
            "remove_after": [
                ("c-old-db", "orphan: app removed"),
                ("c-old", "orphan: app removed"),
            ],
        },
        id="orphan app removed after",
    ),
    pytest.param(
        [want("wp/web")],
        [seen("c-web", "wp/web"), seen("c-cron", "wp/cron")],
        {
            "keep": [("wp/web/0", "c-web")],
            "remove_after": [("c-cron", "orphan: service removed")],
        },
        id="orphan service removed after",
    ),
    pytest.param(
        [want("wp/web")],
        [
            seen("c-a", "wp/web", revision=1, fencing=1),
            seen("c-b", "wp/web", revision=2, fencing=4),
            seen("c-c", "wp/web", revision=1, fencing=4, running=False),
        ],
        {
            "keep": [("wp/web/0", "c-b")],
            "remove_now": [("c-a", "duplicate"), ("c-c", "duplicate, not running")],
        },
        id="duplicates of an unchanged slot: newest kept, the rest removed now",
    ),
    pytest.param(
        [want("wp/web", "h2")],
        [seen("c-a", "wp/web"), seen("c-b", "wp/web", fencing=2)],
        {
            "start": [("START_BESIDE", "wp/web/0", "c-b", "config changed")],
            "remove_now": [("c-a", "duplicate")],
            "remove_after": [("c-b", "replaced: config changed")],
        },
        id="duplicates of a changed slot: one replaced, its twin removed now",
    ),
    pytest.param(
        [want("wp/web", "h2")],
        [
            seen("c-old", "wp/web", "h1", revision=1, fencing=1),
            seen("c-new", "wp/web", "h2", revision=REVISION, fencing=4),
        ],
        {
            "keep": [("wp/web/0", "c-new")],
            "remove_after": [("c-old", "duplicate (old generation)")],
        },
        id="killed worker after start-beside: its new container kept, old generation after",
    ),
    pytest.param(
        [want("wp/web", "h2", ports=True)],
        [
            seen("c-old", "wp/web", "h1", revision=1, running=False),
            seen("c-new", "wp/web", "h2", revision=REVISION, fencing=4),
        ],
        {
            "keep": [("wp/web/0", "c-new")],
            "remove_now": [("c-old", "duplicate, not running")],
        },
        id="killed worker after stop-first: its running new container kept",
    ),
    pytest.param(
        [want("wp/web")],
        [
            seen("c-web", "wp/web"),
            seen("c-noapp", None, labels=(None, "web", 0)),
            seen("c-nosvc", None, labels=("wp", None, 0)),
            seen("c-empty", None, labels=("", "web", 0)),
            seen("c-norep", None, labels=("wp", "web", None)),
            seen("c-negrep", None, labels=("wp", "web", -1)),
        ],
        {
            "keep": [("wp/web/0", "c-web")],
            "remove_now": [
                ("c-empty", "unknown labels"),
                ("c-noapp", "unknown labels"),
                ("c-nosvc", "unknown labels"),
                ("c-negrep", "unknown labels"),
                ("c-norep", "unknown labels"),
            ],
        },
        id="unknown labels: strays removed now",
    ),
    pytest.param(
        [want("wp/web", "h2"), want("wp/db", "h2")],
        [
            seen("c-web", "wp/web", "h1", revision=1, fencing=1),
            seen("c-web-3", "wp/web", "h2", revision=REVISION, fencing=3, running=False),
            seen("c-db", "wp/db", "h1", revision=1, fencing=1),
            seen("c-db-3", "wp/db", "h9", revision=REVISION, fencing=3),
            seen("c-x-3", "wp/extra", "h2", revision=REVISION, fencing=3),
        ],
        {
            "start": [
                ("START_BESIDE", "wp/db/0", "c-db", "config changed"),
                ("START_BESIDE", "wp/web/0", "c-web", "config changed"),
            ],
            "remove_now": [
                ("c-db-3", "stale attempt (fencing 3 < 5)"),
                ("c-x-3", "stale attempt (fencing 3 < 5)"),
                ("c-web-3", "stale attempt (fencing 3 < 5)"),
            ],
            "remove_after": [
                ("c-db", "replaced: config changed"),
                ("c-web", "replaced: config changed"),
            ],
        },
        id="stale fencing leftovers of this revision: removed now, never the one replaced",
    ),
    pytest.param(
        [want("wp/web", "h2")],
        [seen("c-web", "wp/web", "h2", revision=REVISION, fencing=FENCING + 1, running=False)],
        {
            "start": [("START_BESIDE", "wp/web/0", "c-web", "not running")],
            "remove_after": [("c-web", "replaced: not running")],
        },
        id="a higher fencing token is not stale",
    ),
    pytest.param(
        [want("wp/web")],
        [seen("c-web", "wp/web", running=False)],
        {
            "start": [("START_BESIDE", "wp/web/0", "c-web", "not running")],
            "remove_after": [("c-web", "replaced: not running")],
        },
        id="stopped container with the same hash: replaced, removed after",
    ),
    pytest.param(
        [want("wp/web", "h2")],
        [seen("c-web", "wp/web", running=False)],
        {
            "start": [("START_BESIDE", "wp/web/0", "c-web", "config changed, not running")],
            "remove_after": [("c-web", "replaced: config changed, not running")],
        },
        id="stopped container with another hash",
    ),
    pytest.param(
        [want("wp/web", "h2", ports=True), want("wp/db", "h2"), want("wp/proxy", ports=True)],
        [seen("c-web", "wp/web"), seen("c-db", "wp/db")],
        {
            "start": [
                ("START_BESIDE", "wp/db/0", "c-db", "config changed"),
                ("STOP_FIRST", "wp/proxy/0", None, "new service"),
                ("STOP_FIRST", "wp/web/0", "c-web", "config changed"),
            ],
            "remove_after": [
                ("c-db", "replaced: config changed"),
                ("c-web", "replaced: config changed"),
            ],
        },
        id="published port: stop-first, no port: start-beside",
    ),
    pytest.param(
        [want("wp/web", "h2", ports=True)],
        [seen("c-a", "wp/web", running=False, fencing=4), seen("c-b", "wp/web", fencing=1)],
        {
            "start": [("STOP_FIRST", "wp/web/0", "c-b", "config changed")],
            "remove_now": [("c-a", "duplicate, not running")],
            "remove_after": [("c-b", "replaced: config changed")],
        },
        id="the running container is the one replaced, whatever its fencing",
    ),
    pytest.param(
        [],
        [seen("c-web", "wp/web", running=False)],
        {"remove_after": [("c-web", "orphan: app removed")]},
        id="nothing desired: everything torn down after",
    ),
]


@pytest.mark.parametrize(("desired", "observed", "expected"), CASES)
def test_plan_actions(
    desired: list[DesiredContainer], observed: list[ObservedContainer], expected: dict
) -> None:
    result = run(desired, observed)

    assert summary(result) == expected
    assert result.changed == bool(set(expected) - {"keep"})


@pytest.mark.parametrize(("desired", "observed", "expected"), CASES)
def test_plan_ignores_input_order(
    desired: list[DesiredContainer], observed: list[ObservedContainer], expected: dict
) -> None:
    assert run(desired[::-1], observed[::-1]) == run(desired, observed)


@pytest.mark.parametrize(("desired", "observed", "expected"), CASES)
def test_every_observed_container_is_accounted_for_once(
    desired: list[DesiredContainer], observed: list[ObservedContainer], expected: dict
) -> None:
    result = run(desired, observed)

    handled = [
        s.container_id
        for s in (*result.keep, *result.remove_now, *result.remove_after)
        if s.container_id
    ]
    assert sorted(handled) == sorted(c.id for c in observed)
    replaced = {s.container_id for s in result.start if s.container_id}
    assert replaced <= {s.container_id for s in result.remove_after}


def test_unchanged_plan_has_nothing_to_do() -> None:
    result = run([want("wp/web")], [seen("c-web", "wp/web")])

    assert not result.changed
    assert result.waves == ()
    assert result.keep[0].strategy is Strategy.KEEP
    assert result.keep[0].reason == "unchanged"


def test_steps_carry_their_strategy() -> None:
    result = run(
        [want("wp/web", "h2"), want("wp/db", ports=True)],
        [
            seen("c-web", "wp/web"),
            seen("c-gone", "blog/web"),
            seen("c-x", None, labels=(None,) * 3),
        ],
    )

    assert [s.strategy for s in result.start] == [Strategy.STOP_FIRST, Strategy.START_BESIDE]
    assert {s.strategy for s in (*result.remove_now, *result.remove_after)} == {Strategy.REMOVE}


WAVE_CASES = [
    pytest.param(
        [want("wp/web", deps=("mysql/db",)), want("mysql/db")],
        [],
        [["mysql/db/0"], ["wp/web/0"]],
        id="app binding: the bound app first",
    ),
    pytest.param(
        [
            want("shop/db"),
            want("shop/web/0", deps=("shop/db",)),
            want("shop/web/1", deps=("shop/db",)),
            want("shop/worker", deps=("shop/db",)),
            want("shop/proxy", deps=("shop/web",)),
            want("blog/web"),
        ],
        [],
        [
            ["blog/web/0", "shop/db/0"],
            ["shop/web/0", "shop/web/1", "shop/worker/0"],
            ["shop/proxy/0"],
        ],
        id="depends_on inside a package, across replicas, independent apps in parallel",
    ),
    pytest.param(
        [want("wp/web", "h2", deps=("wp/db",)), want("wp/db")],
        [seen("c-web", "wp/web"), seen("c-db", "wp/db")],
        [["wp/web/0"]],
        id="a kept dependency is already ready",
    ),
    pytest.param(
        [
            want("wp/proxy", "h2", deps=("wp/web",)),
            want("wp/web", deps=("wp/db",)),
            want("wp/db", "h2"),
        ],
        [seen("c-proxy", "wp/proxy"), seen("c-web", "wp/web"), seen("c-db", "wp/db")],
        [["wp/db/0", "wp/proxy/0"]],
        id="no waiting through a kept container",
    ),
    pytest.param(
        [
            want("wp/web/0", "h2", deps=("wp/db",)),
            want("wp/db/0", "h2"),
            want("wp/db/1"),
        ],
        [seen("c-web", "wp/web/0"), seen("c-db0", "wp/db/0"), seen("c-db1", "wp/db/1")],
        [["wp/db/0"], ["wp/web/0"]],
        id="only the replicas being started are waited for",
    ),
    pytest.param(
        [want("wp/web", deps=("ext/db",))],
        [],
        [["wp/web/0"]],
        id="a dependency outside the revision is not waited for",
    ),
]


@pytest.mark.parametrize(("desired", "observed", "expected"), WAVE_CASES)
def test_waves(
    desired: list[DesiredContainer], observed: list[ObservedContainer], expected: list[list[str]]
) -> None:
    result = run(desired, observed)

    assert [[f"{a}/{s}/{r}" for a, s, r in wave] for wave in result.waves] == expected
    assert sorted(result.start_dependencies()) == sorted(
        (s.app, s.service, s.replica) for s in result.start
    )


def test_start_dependencies_name_started_replicas() -> None:
    result = run(
        [
            want("shop/db/0"),
            want("shop/db/1"),
            want("shop/web", deps=("shop/db", "shop/cache")),
            want("shop/cache"),
        ],
        [seen("c-cache", "shop/cache")],
    )

    assert result.start_dependencies() == {
        ("shop", "db", 0): set(),
        ("shop", "db", 1): set(),
        ("shop", "web", 0): {("shop", "db", 0), ("shop", "db", 1)},
    }


@pytest.mark.parametrize(
    ("desired", "cycle"),
    [
        pytest.param(
            [want("wp/web", deps=("wp/db",)), want("wp/db", deps=("wp/web",))],
            "wp/db -> wp/web -> wp/db",
            id="two services",
        ),
        pytest.param(
            [want("wp/web", deps=("wp/web",))],
            "wp/web -> wp/web",
            id="depends on itself",
        ),
        pytest.param(
            [
                want("a/x", deps=("b/y",)),
                want("b/y", deps=("c/z",)),
                want("c/z", deps=("a/x",)),
                want("d/w", deps=("a/x",)),
            ],
            "a/x -> b/y -> c/z -> a/x",
            id="across app bindings",
        ),
    ],
)
def test_dependency_cycle_is_an_error(desired: list[DesiredContainer], cycle: str) -> None:
    with pytest.raises(ValueError, match=f"^dependency cycle: {cycle}$"):
        run(desired, [])


def test_cycle_between_kept_services_is_still_an_error() -> None:
    desired = [want("wp/web", deps=("wp/db",)), want("wp/db", deps=("wp/web",))]

    with pytest.raises(ValueError, match="dependency cycle"):
        run(desired, [seen("c-web", "wp/web"), seen("c-db", "wp/db")])


def test_desired_slot_listed_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"listed twice: wp/web\[0\]"):
        run([want("wp/web"), want("wp/web", "h2")], [])
