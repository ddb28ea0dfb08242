"""The promises table (migration 3) and the queries the engine, the CLI and the report use."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from mappings.promises import ISSUE_RESOLVED, new_promise, on_cancel, on_clock, on_issue_resolved, on_public_reply
from syncd import store as store_module
from syncd.errors import StoreError
from syncd.records import Link, Promise, PromiseState, Ref, Stage
from syncd.store import SCHEMA_VERSION, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
TICKET = Ref("zendesk", "7")
OTHER = Ref("zendesk", "8")
ISSUE = Ref("linear", "uuid-1")
ISSUE2 = Ref("linear", "uuid-2")


def promise(
    what: str = "an update",
    *,
    ticket: Ref = TICKET,
    at: datetime = T0,
    due: datetime | None = None,
    trigger: str | None = None,
    issues=(ISSUE,),
) -> Promise:
    if due is None and trigger is None:
        due = at + timedelta(days=2)
    return new_promise(ticket, what, at, origin="cli", issues=issues, due_at=due, trigger=trigger)


@pytest.fixture
def store(store_opener):
    with store_opener(clock=lambda: T0) as s:
        yield s


def test_a_promise_round_trips_whole(store):
    p = promise(trigger=ISSUE_RESOLVED, issues=(ISSUE, ISSUE2))
    assert store.put_promise(p)
    assert store.get_promise(p.id) == p
    assert store.get_promise("nope") is None


def test_put_promise_says_whether_anything_changed(store):
    p = promise()
    assert store.put_promise(p) is True
    assert store.put_promise(p) is False  # a replayed page writes nothing
    moved = on_issue_resolved(p, T0 + timedelta(hours=1))
    assert store.put_promise(moved) is True
    assert store.get_promise(p.id).state is PromiseState.DUE
    assert store.put_promise(moved) is False


def test_put_promise_joins_the_callers_transaction(store):
    p = promise()
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put_promise(p)
            raise RuntimeError("the page failed")
    assert store.get_promise(p.id) is None
    assert store.promises_for_issue(ISSUE) == []


def test_find_promise_by_unique_prefix(store):
    a = dataclasses.replace(promise("a"), id="abc1")
    b = dataclasses.replace(promise("b"), id="abd2")
    c = dataclasses.replace(promise("c"), id="b%_")
    for p in (a, b, c):
        store.put_promise(p)
    assert store.find_promise("abc1") == a
    assert store.find_promise("abc") == a and store.find_promise("abd") == b
    with pytest.raises(ValueError, match="prefix 'ab' matches more than one promise; give more of the id"):
        store.find_promise("ab")
    assert store.find_promise("abe") is None and store.find_promise("abc12") is None
    assert store.find_promise("b%") == c
    assert store.find_promise("%") is None  # no LIKE: a wildcard is a character
    assert store.find_promise("b_") is None
    with pytest.raises(ValueError, match="must not be empty"):
        store.find_promise("  ")


def test_promises_for_ticket_oldest_first_and_active(store):
    late = promise("late", at=T0 + timedelta(hours=2))
    early = promise("early", at=T0)
    kept = on_public_reply(promise("kept", at=T0 + timedelta(hours=1)), T0 + timedelta(hours=3))
    elsewhere = promise("elsewhere", ticket=OTHER)
    for p in (late, early, kept, elsewhere):
        store.put_promise(p)
    assert kept.state is PromiseState.KEPT
    assert [p.what for p in store.promises_for_ticket(TICKET)] == ["early", "kept", "late"]
    assert [p.what for p in store.promises_for_ticket(TICKET, active=True)] == ["early", "late"]
    assert store.promises_for_ticket(Ref("zendesk", "404")) == []


def test_promises_past_due_boundaries(store):
    due_at = T0 + timedelta(days=1)
    open_one = promise("open", due=due_at)
    due_one = on_issue_resolved(promise("due", due=due_at, trigger=ISSUE_RESOLVED), T0 + timedelta(hours=1))
    later = promise("later", due=due_at + timedelta(microseconds=1))
    no_deadline = promise("when it ships", trigger=ISSUE_RESOLVED)
    cancelled = on_cancel(promise("cancelled", due=due_at), T0)
    broken = on_clock(promise("broken", due=T0 + timedelta(hours=1)), T0 + timedelta(hours=2))
    for p in (open_one, due_one, later, no_deadline, cancelled, broken):
        store.put_promise(p)
    assert due_one.state is PromiseState.DUE and broken.state is PromiseState.BROKEN
    assert store.promises_past_due(due_at - timedelta(microseconds=1)) == []
    assert {p.what for p in store.promises_past_due(due_at)} == {"open", "due"}  # at the deadline: past due
    assert {p.what for p in store.promises_past_due(due_at + timedelta(microseconds=1))} == {"open", "due", "later"}
    # A deadline in another time zone compares as the same instant.
    plus_two = timezone(timedelta(hours=2))
    assert {p.what for p in store.promises_past_due(due_at.astimezone(plus_two))} == {"open", "due"}


def test_promises_for_issue_follow_the_promise_issues(store):
    both = promise("both", issues=(ISSUE, ISSUE2))
    one = promise("one", issues=(ISSUE2,), at=T0 + timedelta(minutes=1))
    store.put_promise(both)
    store.put_promise(one)
    assert [p.what for p in store.promises_for_issue(ISSUE)] == ["both"]
    assert [p.what for p in store.promises_for_issue(ISSUE2)] == ["both", "one"]
    # The promise no longer names ISSUE2 (the link ended): it is no longer found through it.
    store.put_promise(dataclasses.replace(both, issues=(ISSUE,)))
    assert [p.what for p in store.promises_for_issue(ISSUE2)] == ["one"]
    store.put_promise(on_cancel(one, T0 + timedelta(hours=1)))
    assert store.promises_for_issue(ISSUE2) == []
    assert [p.what for p in store.promises_for_issue(ISSUE2, active=False)] == ["one"]
    assert store.promises_for_issue(Ref("jira", "1")) == []


def test_list_promises_filters(store):
    a = promise("a")
    b = on_cancel(promise("b", at=T0 + timedelta(minutes=1)), T0 + timedelta(minutes=2))
    c = promise("c", ticket=OTHER, at=T0 + timedelta(minutes=3))
    for p in (c, b, a):
        store.put_promise(p)
    assert [p.what for p in store.list_promises()] == ["a", "b", "c"]
    assert [p.what for p in store.list_promises(state="open")] == ["a", "c"]
    assert [p.what for p in store.list_promises(state="cancelled")] == ["b"]
    assert [p.what for p in store.list_promises(ticket=TICKET)] == ["a", "b"]
    assert [p.what for p in store.list_promises(state="open", ticket=OTHER)] == ["c"]
    with pytest.raises(ValueError, match="unknown promise state 'late'; use one of open, due, kept"):
        store.list_promises(state="late")


def test_all_stage_histories(store):
    assert store.all_stage_histories() == {}
    store.put_stage(TICKET, [(Stage.NEW, T0), (Stage.ASSIGNED, T0 + timedelta(hours=1))])
    store.put_stage(OTHER, [(Stage.NEEDS_CONTEXT, T0)])
    assert store.all_stage_histories() == {
        TICKET: [(Stage.NEW, T0), (Stage.ASSIGNED, T0 + timedelta(hours=1))],
        OTHER: [(Stage.NEEDS_CONTEXT, T0)],
    }


def _write_v2_store(path, monkeypatch) -> None:
    """A store as syncd with schema version 2 left it, holding a link and a stage history."""
    with monkeypatch.context() as m:
        m.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:2])
        m.setattr(store_module, "SCHEMA_VERSION", 2)
        with Store(path, clock=lambda: T0) as old:
            assert old.schema_version == 2
            old.add_link(Link(TICKET, ISSUE, "comment"))
            old.put_stage(TICKET, [(Stage.WAITING, T0)])
            old.set_cursor("zendesk", "c-42")
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "promises" not in tables and "stages" in tables


def test_a_version_2_store_gains_promises_and_keeps_its_data(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    _write_v2_store(path, monkeypatch)
    with pytest.raises(StoreError, match="schema version 2, older than this syncd"):
        Store(path, readonly=True)  # read-only cannot migrate: says to run syncd once
    with Store(path, clock=lambda: T0) as store:
        assert store.schema_version == SCHEMA_VERSION >= 3
        assert store.get_cursor("zendesk") == "c-42"
        assert [(r.ticket, r.issue) for r in store.links_for_ticket(TICKET)] == [(TICKET, ISSUE)]
        assert store.stage_history(TICKET) == [(Stage.WAITING, T0)]
        p = promise()
        assert store.put_promise(p)
    with Store(path, readonly=True) as ro:
        assert ro.get_promise(p.id) == p


def test_readonly_reads_promises_and_refuses_to_write(tmp_path):
    path = tmp_path / "s.db"
    p = promise()
    with Store(path) as store:
        store.put_promise(p)
    with Store(path, readonly=True) as ro:
        assert ro.list_promises() == [p]
        assert ro.promises_for_issue(ISSUE) == [p]
        with pytest.raises(StoreError, match="read-only"):
            ro.put_promise(on_cancel(p, T0))


def test_a_shared_writer_adds_a_promise_while_the_daemon_holds_the_store(tmp_path):
    path = tmp_path / "s.db"
    p = promise()
    with Store(path) as daemon:
        with Store(path, shared=True) as cli:
            assert cli.put_promise(p)
        assert daemon.get_promise(p.id) == p
        assert daemon.promises_past_due(p.due_at) == [p]


def test_status_counts_promises_by_state(store):
    assert store.stats()["promises"] == {}
    store.put_promise(promise("a"))
    store.put_promise(promise("b"))
    store.put_promise(on_cancel(promise("c"), T0))
    assert store.stats()["promises"] == {"cancelled": 1, "open": 2}
