"""Text search over packages: the term index that tells which packages can match a word.

`q` matches a package when each of its words occurs in the package's `search_text` (its
lower-cased name, title, description and tags) anywhere, as `LIKE '%word%'` finds it: `dis`
finds `redis`. No b-tree serves that, and a trigram index over whole texts costs in
proportion to the catalog: a rare word took four times as long at 100,000 packages as at
10,000. So each package's text is also cut into terms, its runs of letters and digits, and
kept twice: every distinct term once in `search_terms`, the lexicon, small however many
packages there are; and one posting per term and package in `package_terms`.

A word is looked up in the lexicon (`term LIKE '%piece%'`, a trigram index on PostgreSQL),
and the postings of the terms found name every package that can hold it. When some word is
held by few packages (`SPARSE_PACKAGES` at most) those packages are the search's
candidates, and the words themselves are checked on their text: the answer is exactly the
one `LIKE` gives, in the cost of the candidates. When every word is held by many packages
the listing walks its own order and checks each package, which finds a page within a few
hundred. Either way a page costs as much at 100,000 packages as at 10,000.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from cachetools import TTLCache
from sqlalchemy import Boolean, bindparam, delete, event, func, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from catalog.db import PlannedOnce
from catalog.models import Package, SearchTerm, package_terms

# Terms are runs of letters and digits; anything else separates them.
_TERM = re.compile(r"[^\W_]+")
# A longer run is kept as overlapping pieces of TERM_LENGTH, one every TERM_STEP characters,
# so that any TERM_STEP characters of it lie whole in one piece; a word's piece is looked up
# by its first TERM_STEP characters.
TERM_LENGTH = 64
TERM_STEP = 32
# A piece held by more terms than this, or whose terms have more postings than this, is
# broad: its packages are too many to read one by one, and a walk finds a page sooner.
BROAD_TERMS = 200
SPARSE_PACKAGES = 300


def short_name(name: str) -> str:
    """What a search ranks a package by: its name's last segment, lower-cased."""
    return name.rsplit(".", 1)[-1].lower()


def terms_of(text: str) -> set[str]:
    """The terms a (lower-cased) search text is indexed under."""
    terms = set()
    for run in _TERM.findall(text):
        if len(run) <= TERM_LENGTH:
            terms.add(run)
        else:
            terms.update(
                run[i : i + TERM_LENGTH] for i in range(0, len(run) - TERM_STEP, TERM_STEP)
            )
    return terms


def _pieces(word: str) -> list[str]:
    """What of a query word is looked up in the lexicon: each of its runs of letters and
    digits (a package holding the word holds each), longest first."""
    return sorted({run[:TERM_STEP] for run in _TERM.findall(word)}, key=len, reverse=True)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class holds(FunctionElement):
    """SQL: whether a text holds a word (`holds(text, word)`), anywhere in it.

    `strpos`/`instr` rather than `LIKE '%word%'`: PostgreSQL estimates a LIKE from the
    column's histogram, which for a word found in few packages says "none", and then reads
    every package rather than walk the listing's order. Of a function it assumes a third
    match, and walks; a search only walks when each of its words is in many packages.
    """

    type = Boolean()
    inherit_cache = True
    name = "holds"


@compiles(holds)
def _holds(element, compiler, **kw):
    return f"instr({compiler.process(element.clauses, **kw)}) > 0"


@compiles(holds, "postgresql")
def _holds_postgresql(element, compiler, **kw):
    return f"strpos({compiler.process(element.clauses, **kw)}) > 0"


_TERMS_HOLDING = PlannedOnce(
    "catalog_search_terms",
    select(SearchTerm.term)
    .where(SearchTerm.term.like(bindparam("piece"), "\\"))
    .limit(bindparam("most")),
)
_POSTINGS = (
    select(package_terms.c.package_name)
    .where(package_terms.c.term.in_(bindparam("terms", expanding=True)))
    .limit(bindparam("most"))
)


# How many packages hold a term, counted up to COUNT_CAP and kept for a few minutes: which
# of a search's broad words drives it is a matter of cost only, never of what matches.
COUNT_CAP = 20_000
_COUNT = select(func.count()).select_from(
    select(package_terms.c.term)
    .where(package_terms.c.term == bindparam("term"))
    .limit(COUNT_CAP)
    .subquery()
)
_held_by: TTLCache[str, int] = TTLCache(maxsize=4096, ttl=300)
_held_by_lock = threading.Lock()


def _packages_holding(connection: Connection, term: str) -> int:
    with _held_by_lock:
        count = _held_by.get(term)
    if count is None:
        count = connection.execute(_COUNT, {"term": term}).scalar_one()
        with _held_by_lock:
            _held_by[term] = count
    return count


@dataclass(frozen=True)
class Driver:
    """How a search finds its matches.

    `among`: the names of every package that can match, few enough to check one by one;
    else `term`: one term that every match holds, whose postings are walked in name order;
    else neither, and the listing itself is walked.
    """

    among: list[str] | None = None
    term: str | None = None


NOTHING = Driver(among=[])


def driver(connection: Connection, words: list[str]) -> Driver:
    """How best to find the packages holding all of `words`: a few queries of the lexicon and
    of at most SPARSE_PACKAGES postings, whatever the catalog's size."""
    broad = []  # single terms held by many packages
    for word in words:
        for piece in _pieces(word):
            pattern = f"%{escape_like(piece)}%"
            found = _TERMS_HOLDING.rows(connection, {"piece": pattern, "most": BROAD_TERMS + 1})
            terms = [row[0] for row in found]
            if not terms:
                return NOTHING  # no package holds this word
            if len(terms) > BROAD_TERMS:
                continue
            postings = {"terms": terms, "most": SPARSE_PACKAGES + 1}
            names = {row[0] for row in connection.execute(_POSTINGS, postings)}
            if len(names) <= SPARSE_PACKAGES:
                return Driver(among=sorted(names))
            if len(terms) == 1:
                broad.append(terms[0])
    if not broad:
        return Driver()
    return Driver(term=min(broad, key=lambda term: _packages_holding(connection, term)))


# -- keeping the index ---------------------------------------------------------


def _insert_terms(dialect: str):
    """An INSERT of lexicon terms that leaves those already there alone."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(SearchTerm).on_conflict_do_nothing(index_elements=["term"])


def index_packages(connection: Connection, texts: Iterable[tuple[str, str]]) -> None:
    """(Re)write the terms of packages, given as (name, search text) pairs.

    New lexicon terms are inserted in sorted order, so two publishes adding some of the same
    new terms wait for one another rather than deadlock.
    """
    texts = list(texts)
    if not texts:
        return
    connection.execute(
        delete(package_terms).where(package_terms.c.package_name.in_([n for n, _ in texts]))
    )
    postings = [
        {"term": term, "package_name": name}
        for name, text in texts
        for term in sorted(terms_of(text))
    ]
    if not postings:
        return
    new = sorted({posting["term"] for posting in postings})
    connection.execute(_insert_terms(connection.dialect.name), [{"term": t} for t in new])
    connection.execute(package_terms.insert(), postings)


@event.listens_for(Session, "after_flush")
def _index_flushed_packages(session: Session, _context) -> None:
    """Whenever a package's search text is written, its terms follow in the same transaction."""
    changed = [
        (obj.name, obj.search_text)
        for obj in (*session.new, *session.dirty)
        if isinstance(obj, Package) and inspect(obj).attrs.search_text.history.has_changes()
    ]
    index_packages(session.connection(), changed)
