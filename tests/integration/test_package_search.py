"""Text search: the same matches as a substring test of every package's text, in the same
order with the same cursors, whichever way the term index finds them; names ranked first."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text

from catalog.auth import Principal
from catalog.db import make_sessionmaker
from catalog.migrate import upgrade
from catalog.models import Base, Package, Tenant, package_terms
from catalog.services import package_search
from catalog.services.package_listing import PackageQuery, list_packages
from catalog.services.package_search import short_name
from catalog.services.packages import _index_text
from tests.integration.test_packages_api import published

WORDS = [
    "redis",
    "cache",
    "web",
    "server",
    "store",
    "queue",
    "mail",
    "alpha",
    "beta",
    "gamma",
    "delta",
    "kafka",
]
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _packages(rng: random.Random, tenants: list[str]) -> list[Package]:
    named = ["redis", "redis-commander", "redis-exporter", "web", "web-redis", "my_app"]
    found = []
    for n in range(400):
        stem = named[n] if n < len(named) else "-".join(rng.sample(WORDS, 2)) + f"-{n}"
        words = rng.choices(WORDS, weights=range(len(WORDS), 0, -1), k=rng.randint(3, 12))
        if n % 97 == 0:
            words.append("x" * 150 + "needle" + "y" * 40)  # one long run of letters
        package = Package(
            id=f"{n:032x}",
            name=f"org.{rng.choice(['acme', 'beta', 'zeta'])}.{stem}",
            tenant_id=rng.choice(tenants),
            visibility=rng.choice(["public", "private"]),
            enabled=rng.random() < 0.9,
            type="application",
            title=stem.replace("-", " ").title(),
            description=" ".join(words) + ("." if n % 3 else ", with-dashes and under_scores"),
            tags=rng.sample(["db", "kv", "web"], rng.randint(0, 2)),
            created_at=NOW - timedelta(hours=n * 7 % 400),
            updated_at=NOW,
        )
        _index_text(package)
        found.append(package)
    return found


@pytest.fixture(params=["postgresql", "sqlite"])
def catalog(request, tmp_path):
    """A seeded catalog's engine, through the ORM as publishing writes it, and its rows."""
    if request.param == "postgresql":
        url = request.getfixturevalue("database_url")
    else:
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
        upgrade(url)
    engine = create_engine(url)
    tenants = ["t-one", "t-two"]
    with make_sessionmaker(engine)() as session:
        session.add_all(Tenant(id=t, name=t) for t in tenants)
        session.flush()
        session.add_all(_packages(random.Random(5), tenants))
        session.commit()
        rows = session.execute(select(Package.name, Package.search_text, Package.tenant_id,
                                      Package.visibility, Package.enabled,
                                      Package.created_at)).all()  # fmt: skip
    yield engine, rows
    if request.param == "postgresql":
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


PRINCIPALS = [
    Principal(token_id="a", tenant_id="t-one", tenant_name="t-one", role="admin"),
    Principal(token_id="v", tenant_id="t-two", tenant_name="t-two", role="viewer"),
]
QUERIES = [
    "redis",  # in most packages, and the start of names
    "kafka",  # in fewer
    "dis",  # inside words: every term holding it
    "redis-c",  # across a dash
    "web redis",
    "under_scores",
    "needle",  # inside a long run of letters
    "with-dashes alpha",
    "nothing-holds-this",
    "-",  # no letters at all
]


def expected(rows, principal: Principal, q: str, sort: str) -> list[str]:
    """What LIKE '%word%' on each package's text finds, in the listing's order."""
    words = q.lower().split()
    matches = [
        row
        for row in rows
        if all(word in row.search_text for word in words)
        and (
            principal.is_admin
            or row.tenant_id == principal.tenant_id
            or (row.visibility == "public" and row.enabled)
        )
    ]
    if sort == "-created":  # each package created at its own moment
        return [r.name for r in sorted(matches, key=lambda r: r.created_at, reverse=True)]
    if sort == "name":
        return sorted(r.name for r in matches)
    prefix = short_name("-".join(words))

    def rank(name: str):
        short = short_name(name)
        return (0, short, name) if short.startswith(prefix) else (1, "", name)

    return sorted((r.name for r in matches), key=rank)


def pages(engine, principal, q, sort) -> list[tuple[list[str], str | None]]:
    found, cursor = [], None
    with engine.connect() as connection:
        while True:
            query = PackageQuery(q=q, sort=sort, limit=7, cursor=cursor)
            items, cursor = list_packages(connection, principal, query)
            found.append(([item.name for item in items], cursor))
            if cursor is None:
                return found


# The three ways of finding matches: candidates (few packages hold a word), one term's
# postings walked in name order (every word in many), and the listing walked (every word in
# many terms).
WAYS = {"candidates": (200, 1000), "postings": (200, 0), "walk": (0, 0)}


@pytest.mark.parametrize("sort", ["relevance", "name", "-created"])
def test_every_way_finds_the_same_pages_as_a_substring_test(catalog, monkeypatch, sort):
    engine, rows = catalog
    for principal in PRINCIPALS:
        for q in QUERIES:
            seen = {}
            for way, (broad, sparse) in WAYS.items():
                monkeypatch.setattr(package_search, "BROAD_TERMS", broad)
                monkeypatch.setattr(package_search, "SPARSE_PACKAGES", sparse)
                seen[way] = pages(engine, principal, q, sort)
            listed = [name for items, _ in seen["candidates"] for name in items]
            assert listed == expected(rows, principal, q, sort), (principal.role, q)
            assert seen["postings"] == seen["candidates"] == seen["walk"], (principal.role, q)
    assert len(expected(rows, PRINCIPALS[0], "redis", sort)) > 100  # pages enough to page


def test_words_seen_in_no_package_end_the_search_at_the_lexicon(catalog):
    engine, _ = catalog
    with engine.connect() as connection:
        assert package_search.driver(connection, ["zzqx"]) == package_search.NOTHING
        assert package_search.driver(connection, ["needle"]).among  # few packages: listed
        assert list_packages(connection, PRINCIPALS[0], PackageQuery(q="redis zzqx")) == (
            [],
            None,
        )


def test_a_search_ranks_exact_then_prefix_name_matches_above_mentions(client, make_caller):
    publisher = make_caller("acme", "publisher")
    published(client, publisher, "org.acme.cachething", description="Keeps a Redis warm")
    published(client, publisher, "org.acme.redis-commander", description="A web UI")
    published(client, publisher, "org.acme.aredis", description="Not quite")
    published(client, publisher, "org.acme.redis", description="A key-value store")

    def search(query: str) -> list[str]:
        response = client.get(f"/v1/packages?{query}", headers=publisher.headers)
        assert response.status_code == 200, response.get_json()
        return [item["name"] for item in response.get_json()["items"]]

    ranked = [
        "org.acme.redis",
        "org.acme.redis-commander",
        "org.acme.aredis",
        "org.acme.cachething",
    ]
    assert search("q=redis") == ranked
    assert search("q=Redis&sort=relevance") == ranked
    assert search("q=redis&sort=name") == sorted(ranked)
    assert search("q=redis&limit=1")[0] == "org.acme.redis"
    cursor = client.get("/v1/packages?q=redis&limit=2", headers=publisher.headers).get_json()
    rest = client.get(
        f"/v1/packages?q=redis&limit=2&cursor={cursor['next_cursor']}", headers=publisher.headers
    ).get_json()
    assert [item["name"] for item in rest["items"]] == ranked[2:]
    assert search("q=redis commander") == ["org.acme.redis-commander"]
    assert search("q=org.acme.redis") == ["org.acme.redis", "org.acme.redis-commander"]


def test_the_terms_follow_each_new_version_and_go_with_the_package(app, client, make_caller):
    publisher = make_caller("acme", "publisher")
    published(client, publisher, "org.acme.shop", description="Sells apples")
    published(client, publisher, "org.acme.shop", "2.0.0", description="Sells pears")

    def names(q: str) -> list[str]:
        response = client.get(f"/v1/packages?q={q}", headers=publisher.headers)
        return [item["name"] for item in response.get_json()["items"]]

    assert names("pears") == ["org.acme.shop"]
    assert names("apples") == []
    assert client.delete("/v1/packages/org.acme.shop", headers=publisher.headers).status_code == 204
    engine = app.extensions["catalog"]["engine"]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(package_terms)).scalar() == 0


def test_the_migration_indexes_the_packages_already_stored(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    upgrade(url, "0007")
    engine = create_engine(url)
    tenant = {"id": "t", "name": "t", "created_at": "2026-11-27 00:00:00"}
    packages = [
        {
            "id": f"p{n}", "name": f"org.acme.app-{n}", "tenant_id": "t", "visibility": "public",
            "enabled": 1, "type": "application", "title": "", "description": f"word{n % 7}",
            "tags": "[]", "search_text": f"org.acme.app-{n} word{n % 7}", "tag_index": ",",
            "created_at": "2026-11-27 00:00:00", "updated_at": "2026-11-27 00:00:00",
        }
        for n in range(2500)  # more than a batch
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name, created_at) "
                          "VALUES (:id, :name, :created_at)"), tenant)  # fmt: skip
        columns = ", ".join(packages[0])
        values = ", ".join(f":{c}" for c in packages[0])
        conn.execute(text(f"INSERT INTO packages ({columns}) VALUES ({values})"), packages)

    upgrade(url)

    principal = Principal(token_id="a", tenant_id="t", tenant_name="t", role="admin")
    with engine.connect() as connection:
        shorts = set(connection.execute(text("SELECT short_name FROM packages")).scalars())
        query = PackageQuery(q="word3", sort="name", limit=1000)
        items, _ = list_packages(connection, principal, query)
    engine.dispose()
    assert shorts == {f"app-{n}" for n in range(2500)}
    assert [p.name for p in items] == sorted(f"org.acme.app-{n}" for n in range(3, 2500, 7))
