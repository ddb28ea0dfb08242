"""What a first sync and the cycles after it hold is bounded by a page, not by the store (issue 13).

The same sync runs over N and 3N linked tickets (in-memory connectors, a real
Store in tmp_path, feeds of ``PAGE`` records a page, delivery ``PAGE`` writes
at a time). Two things are counted, neither of them a time:

- the most rows any one store query returns: a whole-store read (every link,
  every ticket, every key) returns 3N rows at 3N;
- the records syncd holds (tickets, issues, comments, link and outbox rows
  alive, counted with ``gc``, the in-memory connectors' own left out) at the
  end of each page and the start of each delivery round: a structure kept
  across pages (a list of every ticket seen, a cache without a bound) holds
  three times as many.

At 3N both must stay where they are at N, give or take a page's worth. The
decoded-snapshot cache (bounded, 2,048 records) is shrunk to a page's size
here so that N can stay small. (Counting is by query answers and live objects,
never by time.)
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
from pathlib import Path
from typing import Any, Iterator

import pytest

import syncd.app as app_module
import syncd.privacy as privacy_module
import syncd.store as store_module
from connectors.base import Page
from mappings.planner import PlanSettings
from syncd.engine import Engine
from syncd.records import Comment, Issue, Ref, Ticket, to_dict
from syncd.store import LinkRow, OutboxRow, Store
from syncd.writes import Action, AttachTicket

from .doubles import Clock, MemoryHelpdesk, MemoryTracker

PAGE = 20
TICKETS_PER_ISSUE = 10
N = 4 * PAGE  # 80 tickets: 4 pages; 3N is 12
# What a whole-store structure would be made of.
COUNTED = (Ticket, Issue, Comment, LinkRow, OutboxRow)


class Counted:
    """The largest query answer, and the most records syncd held at a page's end or a delivery round's start."""

    def __init__(self, store: Store, desk: MemoryHelpdesk, tracker: MemoryTracker) -> None:
        self.rows = 0
        self.held = 0
        self.doubles = [(desk, tracker)]
        query, set_cursor, due_actions = store._q, store.set_cursor, store.due_actions

        def counted_query(sql: str, params: Any = ()) -> list[tuple]:
            rows = query(sql, params)
            self.rows = max(self.rows, len(rows))
            return rows

        def page_end(connector: str, value: str | None) -> None:
            set_cursor(connector, value)
            self.sample()

        def round_start(limit: int = 100) -> list:
            self.sample()
            return due_actions(limit)

        store._q = counted_query  # type: ignore[method-assign]
        store.set_cursor = page_end
        store.due_actions = round_start  # type: ignore[method-assign]

    def sample(self) -> None:
        """Records (tickets, issues, comments) and store rows alive now, less the in-memory services' own."""
        theirs: set[int] = set()
        for desk, tracker in self.doubles:
            theirs |= {id(x) for x in [*desk.feed.entries, *tracker.feed.entries]}
            theirs |= {id(x) for x in [*desk.tickets.values(), *tracker.issues.values()]}
            theirs |= {id(c) for comments in desk.notes.values() for c in comments}
            theirs |= {id(c) for comments in tracker.issue_comments.values() for c in comments}
        gc.collect()
        held = sum(1 for obj in gc.get_objects() if isinstance(obj, COUNTED) and id(obj) not in theirs)
        self.held = max(self.held, held)


def fresh_reads(desk: MemoryHelpdesk, tracker: MemoryTracker) -> None:
    """Every read answers new objects, as a real connector decoding an answer does (the doubles
    hand out the records they keep, which would hide a copy syncd kept from the count)."""
    for double in (desk, tracker):
        poll = double.poll

        def fresh_pages(cursor: str | None, poll: Any = poll) -> Iterator[Page]:
            for page in poll(cursor):
                yield dataclasses.replace(page, records=[dataclasses.replace(r) for r in page.records])

        double.poll = fresh_pages  # type: ignore[method-assign]
    comments = desk.comments

    def fresh_comments(ticket_id: str, after: str | None = None) -> list[Comment]:
        return [dataclasses.replace(c) for c in comments(ticket_id, after)]

    desk.comments = fresh_comments  # type: ignore[method-assign]


def sync(tmp_path: Path, n: int) -> Counted:
    """A first sync of ``n`` tickets naming their issue in a link field, the cycle that reads
    its echoes, and an idle cycle; what they read and held at most."""
    clock = Clock()
    desk = MemoryHelpdesk(clock=clock)
    tracker = MemoryTracker(clock=clock)
    # A page of issues names as many tickets as a page of tickets.
    desk.feed.page_size, tracker.feed.page_size = PAGE, PAGE // TICKETS_PER_ISSUE
    desk.link_field_ids = ("linked",)
    issues = [tracker.put(i) for i in range(n // TICKETS_PER_ISSUE)]
    clock.advance()
    for i in range(n):
        desk.put(str(i), subject=f"Problem report {i}", fields={"linked": issues[i % len(issues)].key})
    clock.advance()
    fresh_reads(desk, tracker)
    store = Store(tmp_path / f"syncd-{n}.db", clock=clock)
    try:
        settings = PlanSettings(helpdesk="desk", helpdesk_name="Desk")
        engine = Engine(store, desk, {"tracker": tracker}, settings, clock=clock)
        engine.deliverer.run = functools.partial(engine.deliverer.run, limit=PAGE)  # type: ignore[method-assign]
        counted = Counted(store, desk, tracker)
        first = engine.cycle()
        assert first.ok and store.count_links() == n  # the sync did its work
        assert len(desk.writes) >= n
        for _ in range(2):  # the echoes of the first sync's writes, then nothing new
            clock.advance(minutes=5)
            assert engine.cycle().ok
        counted.sample()
        counted.doubles = []  # their records are not kept alive into the next run's count
        return counted
    finally:
        store.close()


@pytest.fixture
def small_snapshot_cache(monkeypatch):
    """The decoded-snapshot cache bounded at a page's size (it is 2,048 records in syncd)."""
    monkeypatch.setattr(store_module, "_snapshot", store_module._Decoded(maxsize=PAGE))
    stamp = store_module._stamp.__wrapped__
    monkeypatch.setattr(store_module, "_stamp", functools.lru_cache(maxsize=PAGE)(stamp))


def test_no_query_and_no_held_structure_grows_with_the_store(tmp_path, small_snapshot_cache):
    small, large = sync(tmp_path, N), sync(tmp_path, 3 * N)
    # A page of records (and its links, snapshots and writes) is the largest answer, whatever the size.
    assert small.rows <= 2 * PAGE, small.rows
    assert large.rows <= 2 * PAGE, f"a store query returned {large.rows} rows at {3 * N} tickets"
    # Records held between pages: a page's worth (its tickets, their links and issues, the bounded
    # cache's records) at either size; a structure kept across pages would add 2N = 160 at 3N.
    assert large.held <= small.held + PAGE, (
        f"syncd held {large.held} records at {3 * N} tickets against {small.held} at {N}"
    )


class Answers:
    """The most rows any one store query returned."""

    def __init__(self, store: Store) -> None:
        self.rows = 0
        query = store._q

        def counted_query(sql: str, params: Any = ()) -> list[tuple]:
            rows = query(sql, params)
            self.rows = max(self.rows, len(rows))
            return rows

        store._q = counted_query  # type: ignore[method-assign]


def turned_public(tmp_path: Path, n: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """A place of ``n`` issues, syncd's writes delivered on a tenth of them, turns public: the largest
    store answer while it is acted on, and the rewrites queued."""
    monkeypatch.setattr(privacy_module, "PAGE", PAGE)
    clock = Clock()
    desk, tracker = MemoryHelpdesk(clock=clock), MemoryTracker(clock=clock)
    store = Store(tmp_path / f"public-{n}.db", clock=clock)
    try:
        engine = Engine(
            store, desk, {"tracker": tracker}, PlanSettings(helpdesk="desk", helpdesk_name="Desk"), clock=clock
        )
        store.put_snapshots([tracker.put(i) for i in range(n)])
        written = [f"id{i}" for i in range(0, n, TICKETS_PER_ISSUE)]
        store.enqueue_many(
            [Action(f"attach-{i}", "tracker", i, AttachTicket("u", "t", "s"), f"issue:{i}") for i in written]
        )
        for row in store.list_outbox(limit=n):
            store.mark_done(row.id, {"id": "a" + row.target})
        store.set_place_visibility("tracker", "ENG", False)
        monkeypatch.setattr(tracker, "reports_visibility", True)
        monkeypatch.setattr(tracker, "visibility", lambda: {"ENG": True})
        answers = Answers(store)
        queued, rows = engine.privacy.learn(), answers.rows
        assert all(i.public for i in store.get_snapshots([Ref("tracker", f"id{i}") for i in range(n)]).values())
        return rows, queued
    finally:
        store.close()


def test_a_place_turning_public_is_read_a_page_at_a_time(tmp_path, monkeypatch):
    small, large = turned_public(tmp_path, 3 * PAGE, monkeypatch), turned_public(tmp_path, 9 * PAGE, monkeypatch)
    assert small[1] == 3 * PAGE // TICKETS_PER_ISSUE and large[1] == 9 * PAGE // TICKETS_PER_ISSUE  # one rewrite each
    assert small[0] <= PAGE and large[0] <= PAGE, f"a store query returned {large[0]} rows at {9 * PAGE} issues"


def native_filled(tmp_path: Path, n: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """``n`` issue snapshots stored before Issue.native existed are filled in: the largest store
    answer, and how many were filled."""
    monkeypatch.setattr(app_module, "NATIVE_PAGE", PAGE)
    clock = Clock()
    tracker = MemoryTracker(clock=clock)
    store = Store(tmp_path / f"native-{n}.db", clock=clock)
    try:
        store.put_snapshots([tracker.put(i) for i in range(n)])
        with store.transaction():  # as syncd stored them before Issue.native existed
            for i in range(n):
                data = {k: v for k, v in to_dict(tracker.issues[f"id{i}"]).items() if k != "native"}
                store._x("UPDATE snapshots SET data = ? WHERE id = ?", [json.dumps(data), f"id{i}"])
        answers = Answers(store)
        filled, rows = app_module.fill_native(store, {"tracker": tracker}), answers.rows
        assert store.issues_without_native("tracker") == []
        return rows, filled
    finally:
        store.close()


def test_old_snapshots_get_their_state_words_a_page_at_a_time(tmp_path, monkeypatch):
    small, large = native_filled(tmp_path, 3 * PAGE, monkeypatch), native_filled(tmp_path, 9 * PAGE, monkeypatch)
    assert small[1] == 3 * PAGE and large[1] == 9 * PAGE
    assert small[0] <= PAGE and large[0] <= PAGE, f"a store query returned {large[0]} rows at {9 * PAGE} issues"
