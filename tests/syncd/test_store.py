"""The state store: schema, locking, transactions and every query the engine uses."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd import store as store_module
from syncd.errors import StoreError, StoreLocked
from syncd.records import (
    Attachment,
    Customer,
    Event,
    Issue,
    Link,
    Organization,
    Ref,
    StateCategory,
    Ticket,
)
from syncd.store import SCHEMA_VERSION, Store
from syncd.writes import Action, AttachTicket, IssueComment, TicketUpdate

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "syncd.db"


@pytest.fixture
def store(store_opener, clock):
    """The store of a test, once on SQLite and once on PostgreSQL."""
    with store_opener(clock=clock) as s:
        yield s


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def issue(ident: str, key: str, at: datetime = T0, **kw) -> Issue:
    return Issue(
        ref=Ref("linear", ident),
        key=key,
        url=f"https://linear.app/x/issue/{key}",
        title=kw.pop("title", "Export fails"),
        state=kw.pop("state", StateCategory.STARTED),
        state_name=kw.pop("state_name", "In Progress"),
        updated_at=at,
        **kw,
    )


def ticket(ident: str, at: datetime = T0, **kw) -> Ticket:
    return Ticket(
        ref=Ref("zendesk", ident),
        key=f"#{ident}",
        url=f"https://acme.zendesk.com/agent/tickets/{ident}",
        subject=kw.pop("subject", "Cannot export"),
        status=kw.pop("status", "open"),
        updated_at=at,
        **kw,
    )


def action(key: str, group: str = "zendesk:1") -> Action:
    return Action(
        key=key, connector="zendesk", target=group.split(":")[-1], write=IssueComment(f"note {key}"), group=group
    )


def run_python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


# --- schema and migrations ------------------------------------------------------


def test_new_store_is_migrated_and_reopens_with_its_data(store_opener, clock):
    with store_opener(clock=clock) as s:
        assert s.schema_version == SCHEMA_VERSION
        s.set_cursor("zendesk", "c1")
    with store_opener(clock=clock) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.get_cursor("zendesk") == "c1"
        for table in ("meta", "cursors", "snapshots", "record_meta", "links", "outbox", "quarantine", "events"):
            assert s._has_table(table), table


def test_migrations_are_applied_in_order_from_the_stored_version(store_opener, monkeypatch):
    with store_opener() as s:
        s.set_cursor("zendesk", "kept")
    v2 = "CREATE TABLE widgets (id INTEGER PRIMARY KEY, due_at TEXT)"
    v3 = "ALTER TABLE widgets ADD COLUMN kept_at TEXT"
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS + (v2, v3))
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 2)
    with store_opener() as s:
        assert s.schema_version == SCHEMA_VERSION + 2
        assert s.get_cursor("zendesk") == "kept"
        with s.transaction():
            s._x("INSERT INTO widgets (due_at, kept_at) VALUES (?, ?)", ["d", "k"])
        assert s._q("SELECT id, due_at, kept_at FROM widgets") == [(1, "d", "k")]


def test_a_failing_migration_leaves_the_store_as_it_was(store_opener, monkeypatch):
    with store_opener():
        pass
    monkeypatch.setattr(
        store_module, "MIGRATIONS", store_module.MIGRATIONS + ("CREATE TABLE t (a TEXT); SELECT nope FROM t",)
    )
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(Exception, match="nope"):
        store_opener()
    monkeypatch.undo()
    with store_opener() as s:
        assert s._q("SELECT value FROM meta WHERE key='schema_version'") == [(str(SCHEMA_VERSION),)]
        assert not s._has_table("t")


def test_a_store_from_a_newer_syncd_is_refused(store_opener):
    with store_opener() as s:
        with s.transaction():
            s._x("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    for readonly in (False, True):
        with pytest.raises(StoreError, match=rf"schema version 99, newer .*\({SCHEMA_VERSION}\); upgrade syncd"):
            store_opener(readonly=readonly)


def test_a_file_that_is_not_a_store_is_refused(db_path):
    db_path.write_bytes(b"this is a text file, not SQLite" * 100)
    with pytest.raises(StoreError, match="is not a syncd store"):
        Store(db_path)
    with pytest.raises(StoreError, match="is not a syncd store"):
        Store(db_path, readonly=True)


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope" / "syncd.db")


# --- files, modes and the lock --------------------------------------------------


def test_store_files_are_private_whatever_the_umask(db_path):
    old = os.umask(0o022)
    try:
        with Store(db_path) as s:
            s.set_cursor("zendesk", "x")
            for path in (db_path, f"{db_path}-wal", f"{db_path}-shm", f"{db_path}.lock"):
                assert mode_of(path) == 0o600, path
    finally:
        os.umask(old)


def test_an_existing_store_with_loose_mode_is_tightened(db_path):
    with Store(db_path):
        pass
    os.chmod(db_path, 0o644)
    with Store(db_path):
        assert mode_of(db_path) == 0o600


def test_second_writer_is_refused_with_the_holders_pid_and_readers_work_alongside(db_path, clock):
    with Store(db_path, clock=clock) as daemon:
        daemon.set_cursor("zendesk", "c1")
        with pytest.raises(StoreLocked) as info:
            Store(db_path)
        assert str(info.value) == (f"{db_path} is in use by another syncd process (pid {os.getpid()}); stop it first")
        with Store(db_path, readonly=True) as reader:
            assert reader.get_cursor("zendesk") == "c1"
            daemon.set_cursor("zendesk", "c2")
            assert reader.get_cursor("zendesk") == "c2"
            with pytest.raises(StoreError, match="read-only"):
                reader.set_cursor("zendesk", "c3")
    with Store(db_path) as again:  # the lock went with close()
        assert again.get_cursor("zendesk") == "c2"


def test_the_lock_names_another_process_and_dies_with_it(db_path):
    holder = run_python(
        "import sys; from syncd.store import Store\n"
        "s = Store(sys.argv[1]); print('ready', flush=True); sys.stdin.readline()",
        str(db_path),
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLocked, match=rf"\(pid {holder.pid}\); stop it first"):
            Store(db_path)
    finally:
        holder.kill()
        holder.wait()
    with Store(db_path):  # a killed holder leaves no stale lock
        pass


def test_readonly_needs_an_existing_current_store(db_path):
    with pytest.raises(StoreError, match="does not exist: no store yet"):
        Store(db_path, readonly=True)
    with Store(db_path):
        pass
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="older than this syncd"):
        Store(db_path, readonly=True)


def test_closed_store_says_so(db_path):
    s = Store(db_path)
    s.close()
    s.close()
    with pytest.raises(StoreError, match="the store is closed"):
        s.get_cursor("zendesk")


# --- transactions ---------------------------------------------------------------


def test_a_failed_transaction_writes_nothing(store, db_path):
    store.set_cursor("zendesk", "before")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.set_cursor("zendesk", "after")
            store.put_snapshot(ticket("1"))
            store.enqueue(action("k1"))
            store.add_link(Link(Ref("zendesk", "1"), Ref("linear", "a"), "tag"))
            store.set_meta(Ref("zendesk", "1"), last_comment_id="9")
            store.add_event(Event("linked", "linked"))
            store.quarantine("zendesk", "5", "bad", {})
            raise RuntimeError("crash mid-page")
    assert store.get_cursor("zendesk") == "before"
    assert store.get_snapshot(Ref("zendesk", "1")) is None
    assert store.list_outbox() == []
    assert store.all_links(active=False) == []
    assert store.get_meta(Ref("zendesk", "1")) == {}
    assert store.last_event_id() == 0
    assert store.list_quarantine(include_resolved=True) == []


def test_nested_transactions_join_the_outer_one(store, store_opener):
    with store_opener(readonly=True) as reader:
        with pytest.raises(RuntimeError):
            with store.transaction():
                with store.transaction():
                    store.set_cursor("zendesk", "inner")
                assert reader.get_cursor("zendesk") is None  # not committed by the inner block
                raise RuntimeError
        assert store.get_cursor("zendesk") is None
        with store.transaction():
            with store.transaction():
                store.set_cursor("zendesk", "inner")
            store.set_cursor("linear", "outer")
        assert (reader.get_cursor("zendesk"), reader.get_cursor("linear")) == ("inner", "outer")


def test_store_can_be_used_from_another_thread(store):
    store.set_cursor("zendesk", "x")
    seen = []
    worker = threading.Thread(target=lambda: seen.append(store.stats()["cursors"]["zendesk"]["value"]))
    worker.start()
    worker.join()
    assert seen == ["x"]


# --- cursors and snapshots ------------------------------------------------------


def test_cursor_set_reset_and_its_time(store, clock):
    assert store.get_cursor("zendesk") is None
    store.set_cursor("zendesk", "1714560000")
    clock.advance(minutes=5)
    store.set_cursor("linear", "2024-05-01T12:00:00Z")
    store.set_cursor("linear", None)
    assert store.get_cursor("linear") is None
    cursors = store.stats()["cursors"]
    assert cursors["zendesk"] == {"value": "1714560000", "updated_at": T0}
    assert cursors["linear"] == {"value": None, "updated_at": T0 + timedelta(minutes=5)}


def test_snapshots_round_trip_exactly(store):
    full_ticket = Ticket(
        ref=Ref("zendesk", "35436"),
        key="#35436",
        url="https://acme.zendesk.com/agent/tickets/35436",
        subject="Export to CSV fails — ünïcode",
        status="pending",
        updated_at=datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc),
        created_at=datetime(2024, 4, 30, 9, 0, tzinfo=timezone(timedelta(hours=2))),
        priority="high",
        requester=Customer("20978392", "Jane Doe", "jane@example.com", "57542"),
        organization=Organization("57542", "Acme", tier="enterprise"),
        assignee_id="235323",
        group_id="98738",
        tags=("product", "escalated"),
        fields={"27642": "sev2", "360001": ["a", "b"], "360002": {"nested": [1, None, True]}, "1": None},
        description="Steps:\n1. click export\n",
    )
    full_issue = Issue(
        ref=Ref("linear", "3f1c0f0e-8a5c-4f7b-9a5e-1b2c3d4e5f60"),
        key="ENG-12",
        url="https://linear.app/acme/issue/ENG-12",
        title="CSV export crashes",
        state=StateCategory.CANCELED,
        state_name="Won't fix",
        updated_at=T0,
        assignee="u1",
        team="ENG",
        resolution="duplicate",
        attachments=(
            Attachment("https://acme.zendesk.com/agent/tickets/35436", "Ticket #35436", "0123456789abcdef0123"),
            Attachment("https://example.com"),
        ),
        public=True,
    )
    bare_ticket = ticket("7")
    for record in (full_ticket, full_issue, bare_ticket):
        assert store.put_snapshot(record) is True
        assert store.get_snapshot(record.ref) == record
    assert store.get_snapshots([full_ticket.ref, full_issue.ref, Ref("zendesk", "404")]) == {
        full_ticket.ref: full_ticket,
        full_issue.ref: full_issue,
    }
    assert store.get_snapshot(Ref("zendesk", "404")) is None


def test_an_older_snapshot_does_not_overwrite_a_newer_one(store):
    new = issue("a", "ENG-1", T0 + timedelta(seconds=1), title="new")
    old = issue("a", "ENG-1", T0 + timedelta(microseconds=500000), title="old")
    store.put_snapshot(new)
    assert store.put_snapshot(old) is False
    assert store.get_snapshot(new.ref) == new
    same_time = issue("a", "ENG-1", new.updated_at, title="same second, later poll")
    assert store.put_snapshot(same_time) is True
    assert store.get_snapshot(new.ref).title == "same second, later poll"


def test_put_snapshot_refuses_other_records(store):
    with pytest.raises(TypeError, match="Ticket or an Issue"):
        store.put_snapshot(Ref("zendesk", "1"))


def test_find_issue_by_key_follows_a_move(store):
    a = Ref("linear", "a")
    store.put_snapshot(issue("a", "ENG-1", T0))
    assert store.find_issue_by_key("linear", "ENG-1").ref == a
    store.put_snapshot(issue("a", "OPS-4", T0 + timedelta(hours=1)))  # moved to another team
    assert store.find_issue_by_key("linear", "ENG-1") is None
    assert store.find_issue_by_key("linear", "OPS-4").ref == a
    assert store.find_issue_by_key("github", "OPS-4") is None
    # A stale snapshot still claims a key that a newer issue now holds: the newest wins.
    store.put_snapshot(issue("b", "OPS-9", T0))
    store.put_snapshot(issue("c", "OPS-9", T0 + timedelta(hours=2)))
    assert store.find_issue_by_key("linear", "OPS-9").ref == Ref("linear", "c")
    store.put_snapshot(ticket("OPS-4"))  # tickets never answer for an issue key
    assert store.find_issue_by_key("zendesk", "#OPS-4") is None


def test_meta_merges_and_can_exist_before_a_snapshot(store):
    ref = Ref("linear", "a")
    assert store.get_meta(ref) == {}
    store.set_meta(ref, last_state="started", echo_updated_at=T0)
    store.set_meta(ref, last_comment_id="c9")
    assert store.get_meta(ref) == {
        "last_state": "started",
        "echo_updated_at": "2024-05-01T12:00:00Z",
        "last_comment_id": "c9",
    }
    store.set_meta(ref, last_state=StateCategory.COMPLETED, echo_updated_at=None)
    assert store.get_meta(ref) == {"last_state": "completed", "last_comment_id": "c9"}
    assert store.get_snapshot(ref) is None


# --- links ------------------------------------------------------------------------


def test_links_are_many_to_many_and_can_end_and_come_back(store, clock):
    t1, t2, i1, i2 = Ref("zendesk", "1"), Ref("zendesk", "2"), Ref("linear", "a"), Ref("github", "77")
    assert store.add_link(Link(t1, i1, "comment")) is True
    assert store.add_link(Link(t1, i2, "field")) is True
    assert store.add_link(Link(t2, i1, "tag")) is True
    assert store.add_link(Link(t1, i1, "tag")) is False
    assert [(link.issue, link.origin) for link in store.links_for_ticket(t1)] == [(i1, "comment"), (i2, "field")]
    assert [link.ticket for link in store.links_for_issue(i1)] == [t1, t2]
    assert store.count_links() == 3

    clock.advance(hours=1)
    assert store.end_link(t1, i1, "unlinked in Linear") is True
    assert store.end_link(t1, i1, "again") is False
    assert store.end_link(t2, i2, "never linked") is False
    assert [link.issue for link in store.links_for_ticket(t1)] == [i2]
    ended = [link for link in store.links_for_ticket(t1, active=False) if not link.active]
    assert [(link.issue, link.ended_at, link.ended_reason) for link in ended] == [
        (i1, T0 + timedelta(hours=1), "unlinked in Linear")
    ]
    assert [link.ticket for link in store.links_for_issue(i1)] == [t2]
    assert store.count_links() == 2 and store.count_links(active=False) == 3
    assert len(store.all_links()) == 2 and len(store.all_links(active=False)) == 3

    clock.advance(hours=1)
    assert store.add_link(Link(t1, i1, "cli")) is True
    back = store.links_for_ticket(t1)[0]
    assert (back.issue, back.origin, back.active, back.ended_at, back.ended_reason, back.created_at) == (
        i1,
        "cli",
        True,
        None,
        None,
        T0 + timedelta(hours=2),
    )
    assert store.stats()["links"] == {"active": 3, "ended": 0}


# --- outbox ------------------------------------------------------------------------


def test_enqueue_is_idempotent_by_key(store):
    assert store.enqueue(action("k1")) is True
    assert store.enqueue(action("k1")) is False
    [row] = store.list_outbox()
    store.mark_sending(row.id)
    store.mark_done(row.id, {"comment_id": 5})
    assert store.enqueue(action("k1")) is False  # delivered keys are never planned again
    [row] = store.list_outbox()
    assert (row.key, row.state, row.attempts, row.result, row.payload, row.group) == (
        "k1",
        "done",
        1,
        {"comment_id": 5},
        {"body": "note k1"},
        "zendesk:1",
    )
    assert row.done_at == T0 and row.created_at == T0


def test_due_actions_keep_order_within_a_group(store):
    for key, group in (("a1", "zendesk:1"), ("b1", "zendesk:2"), ("a2", "zendesk:1"), ("a3", "zendesk:1")):
        store.enqueue(action(key, group))
    ids = {r.key: r.id for r in store.list_outbox()}
    assert [r.key for r in store.due_actions()] == ["a1", "b1"]
    assert [r.key for r in store.due_actions(limit=1)] == ["a1"]

    store.mark_failed(ids["a1"], "403 Forbidden", retry_at=None, dead=True)
    assert [r.key for r in store.due_actions()] == ["b1"]  # a dead action holds its group
    dead = store.list_outbox("dead")
    assert [(r.key, r.last_error) for r in dead] == [("a1", "403 Forbidden")]

    assert store.drop_action(ids["a1"]) is True
    assert store.drop_action(ids["a1"]) is False
    assert [r.key for r in store.due_actions()] == ["b1", "a2"]  # by id

    store.mark_sending(ids["a2"])
    store.mark_done(ids["a2"])
    assert [r.key for r in store.due_actions()] == ["b1", "a3"]
    assert store.outbox_counts() == {"pending": 2, "sending": 0, "done": 1, "dead": 0, "dropped": 1}


def test_backoff_is_honoured_with_the_clock(store, clock):
    store.enqueue(action("a1"))
    store.enqueue(action("a2"))
    [row] = store.due_actions()
    store.mark_sending(row.id)
    assert store.mark_failed(row.id, "503", retry_at=clock.now + timedelta(seconds=60)) is True
    assert store.due_actions() == []  # a2 waits behind a1's backoff too
    clock.advance(seconds=59)
    assert store.due_actions() == []
    clock.advance(seconds=1)
    [again] = store.due_actions()
    assert (again.key, again.state, again.attempts, again.last_error) == ("a1", "pending", 1, "503")
    assert again.next_attempt_at == T0 + timedelta(seconds=60)


def test_retry_action_brings_a_dead_one_back_now(store, clock):
    store.enqueue(action("a1"))
    [row] = store.due_actions()
    store.mark_sending(row.id)
    store.mark_failed(row.id, "x" * 10_000, retry_at=None, dead=True)
    assert len(store.get_action(row.id).last_error) == store_module._MAX_ERROR_CHARS
    clock.advance(hours=3)
    assert store.retry_action(row.id) is True
    [due] = store.due_actions()
    assert (due.id, due.state, due.next_attempt_at) == (row.id, "pending", clock.now)
    store.mark_sending(row.id)
    assert store.retry_action(row.id) is True
    assert store.get_action(row.id).state == "sending"  # it may have landed: stays so
    assert store.mark_done(row.id) is True
    assert store.retry_action(row.id) is False
    assert store.drop_action(row.id) is False
    assert store.mark_failed(row.id, "late", retry_at=None) is False


def test_an_uncertain_failure_keeps_the_marker_check(store, clock):
    """A timeout after sending may have landed: the retry must look for the marker
    first, so the action stays 'sending', and a dead one comes back as 'sending'."""
    store.enqueue(action("a1"))
    [row] = store.due_actions()
    store.mark_sending(row.id)
    store.mark_failed(row.id, "read timeout", retry_at=clock.now + timedelta(seconds=30), uncertain=True)
    assert store.due_actions() == []
    clock.advance(seconds=30)
    [due] = store.due_actions()
    assert (due.state, due.attempts, due.maybe_applied) == ("sending", 1, True)

    store.mark_sending(row.id)
    store.mark_failed(row.id, "gave up", retry_at=None, dead=True, uncertain=True)
    assert store.retry_action(row.id) is True
    again = store.get_action(row.id)
    assert (again.state, again.attempts, again.maybe_applied) == ("sending", 2, True)

    store.mark_sending(row.id)
    store.mark_failed(row.id, "409 closed", retry_at=None, dead=True)  # refused: nothing landed
    store.retry_action(row.id)
    assert (store.get_action(row.id).state, store.get_action(row.id).maybe_applied) == ("pending", False)


def test_oldest_pending_age(store, clock):
    assert store.oldest_pending_age() is None
    store.enqueue(action("a1"))
    clock.advance(minutes=10)
    store.enqueue(action("b1", "zendesk:2"))
    clock.advance(minutes=5)
    assert store.oldest_pending_age() == timedelta(minutes=15)
    store.mark_sending(store.due_actions()[0].id)
    assert store.oldest_pending_age() == timedelta(minutes=15)  # sending is not delivered yet
    store.mark_done(store.due_actions()[0].id)
    assert store.oldest_pending_age() == timedelta(minutes=5)


def test_list_outbox_rejects_an_unknown_state(store):
    with pytest.raises(ValueError, match="unknown outbox state 'lost'"):
        store.list_outbox("lost")


def test_a_sending_action_survives_a_crash(db_path):
    """kill -9 after mark_sending: on restart the action is due, marked 'sending',
    so delivery knows to look for its marker before sending again."""
    crashing = run_python(
        "import os, sys\n"
        "from syncd.store import Store\n"
        "from syncd.writes import Action, TicketUpdate\n"
        "s = Store(sys.argv[1])\n"
        "s.enqueue(Action('k1', 'zendesk', '1', TicketUpdate(note='hi'), 'zendesk:1'))\n"
        "s.enqueue(Action('k2', 'zendesk', '1', TicketUpdate(note='then'), 'zendesk:1'))\n"
        "s.mark_sending(s.due_actions()[0].id)\n"
        "os._exit(9)\n",
        str(db_path),
    )
    _, err = crashing.communicate()
    assert crashing.returncode == 9, err
    with Store(db_path) as s:
        [due] = s.due_actions()
        assert (due.key, due.state, due.attempts) == ("k1", "sending", 1)


# --- quarantine ----------------------------------------------------------------------


def test_quarantine_upserts_by_record(store, clock):
    first = store.quarantine("zendesk", "42", "missing updated_at", {"id": 42})
    clock.advance(minutes=1)
    second = store.quarantine("zendesk", "42", "missing status", {"id": 42, "v": 2})
    assert first == second
    other = store.quarantine("linear", "42", "bad", None)
    anon1 = store.quarantine("zendesk", None, "truncated body", "<html>")
    anon2 = store.quarantine("zendesk", None, "truncated body", b"\x00raw")
    assert len({first, other, anon1, anon2}) == 4
    [row] = [r for r in store.list_quarantine() if r.id == first]
    assert (row.count, row.reason, row.payload, row.first_at, row.last_at) == (
        2,
        "missing status",
        {"id": 42, "v": 2},
        T0,
        T0 + timedelta(minutes=1),
    )
    assert store.quarantined_ids("zendesk") == {"42"}
    assert store.stats()["quarantine_open"] == 4

    assert store.resolve_quarantine(first) is True
    assert store.resolve_quarantine(first) is False
    assert store.quarantined_ids("zendesk") == set()
    assert first not in {r.id for r in store.list_quarantine()}
    assert first in {r.id for r in store.list_quarantine(include_resolved=True)}

    assert store.quarantine("zendesk", "42", "still bad", {}) == first  # back again: reopened
    [row] = [r for r in store.list_quarantine() if r.id == first]
    assert (row.count, row.resolved_at) == (3, None)


# --- events ---------------------------------------------------------------------------


def test_history_merges_ticket_and_linked_issue_events(store, clock):
    t1, t2, i1, i9 = Ref("zendesk", "1"), Ref("zendesk", "2"), Ref("linear", "a"), Ref("linear", "z")
    store.add_link(Link(t1, i1, "comment"))
    store.add_link(Link(t2, i1, "tag"))
    ids = [
        store.add_event(Event("flagged", "flagged for product", ticket=t1)),
        store.add_event(Event("state", "ENG-1 started", issue=i1, detail={"from": "unstarted", "to": "started"})),
        store.add_event(Event("noted", "note on #2", ticket=t2, issue=i1)),  # another ticket's story
        store.add_event(Event("state", "unrelated", issue=i9)),
        store.add_event(Event("noted", "note on #1", ticket=t1, issue=i1)),
    ]
    assert ids == sorted(ids) and store.last_event_id() == ids[-1]
    story = store.history(t1)
    assert [e.summary for e in story] == ["flagged for product", "ENG-1 started", "note on #1"]
    assert story[1].detail == {"from": "unstarted", "to": "started"}
    assert (story[1].ticket, story[1].issue, story[2].ticket, story[2].at) == (None, i1, t1, T0)
    assert [e.summary for e in store.history(t2)] == ["ENG-1 started", "note on #2"]
    assert [e.id for e in store.events_since(ids[1])] == ids[2:]
    assert [e.id for e in store.events_since(ids[1], limit=2)] == ids[2:4]
    assert store.events_since(ids[-1]) == []


# --- bulk lookups -------------------------------------------------------------------


def test_bulk_lookups_are_one_query_for_2000_refs(store):
    issues = [issue(f"u{i}", f"ENG-{i}") for i in range(2000)]
    tickets = [ticket(str(i)) for i in range(2000)]
    with store.transaction():
        for record in issues + tickets:
            store.put_snapshot(record)
        for n, rec in enumerate(issues):
            if n % 2 == 0:
                store.add_link(Link(tickets[n].ref, rec.ref, "comment"))
                store.add_link(Link(tickets[n + 1].ref, rec.ref, "tag"))
        store.end_link(tickets[0].ref, issues[0].ref, "gone")
    wanted = [r.ref for r in issues] + [Ref("linear", "never-seen")]

    statements: list[str] = []
    run = store._run

    def counted(sql, params):
        statements.append(sql)
        return run(sql, params)

    store._run = counted  # every statement of either backend goes through _run
    snapshots = store.get_snapshots(wanted)
    links = store.links_for_issues(r.ref for r in issues)
    del store._run

    assert len(statements) == 2
    assert snapshots == {r.ref: r for r in issues}
    assert set(links) == {r.ref for r in issues}
    assert [link.ticket for link in links[issues[0].ref]] == [tickets[1].ref]
    assert [link.ticket for link in links[issues[2].ref]] == [tickets[2].ref, tickets[3].ref]
    assert links[issues[1].ref] == []
    assert len(store.links_for_issues([issues[0].ref], active=False)[issues[0].ref]) == 2
    assert store.get_snapshots([]) == {} and store.links_for_issues([]) == {}


def counting_queries(store, monkeypatch) -> list[str]:
    """The SQL texts the store runs from now on (either backend)."""
    statements: list[str] = []
    run = store._q

    def counted(sql, params=()):
        statements.append(sql)
        return run(sql, params)

    monkeypatch.setattr(store, "_q", counted)
    return statements


def test_links_of_many_tickets_are_one_query(store, monkeypatch):
    issues = [issue(f"u{i}", f"ENG-{i}") for i in range(3)]
    tickets = [ticket(str(i)) for i in range(1500)]
    with store.transaction():
        for n, rec in enumerate(tickets):
            store.add_link(Link(rec.ref, issues[n % 3].ref, "comment"))
            if n % 2 == 0:
                store.add_link(Link(rec.ref, issues[(n + 1) % 3].ref, "tag"))
        store.end_link(tickets[0].ref, issues[0].ref, "gone")
    wanted = [t.ref for t in tickets] + [Ref("zendesk", "never-seen")]

    statements = counting_queries(store, monkeypatch)
    links = store.links_for_tickets(wanted)
    assert len(statements) == 1
    monkeypatch.undo()
    assert list(links) == wanted  # every ref asked for, in the order asked
    assert [row.issue for row in links[tickets[0].ref]] == [issues[1].ref]
    assert [row.issue for row in links[tickets[1].ref]] == [issues[1].ref]
    assert [row.issue for row in links[tickets[2].ref]] == [issues[2].ref, issues[0].ref]
    assert links[Ref("zendesk", "never-seen")] == []
    assert [row.issue for row in store.links_for_tickets([tickets[0].ref], active=False)[tickets[0].ref]] == [
        issues[0].ref,
        issues[1].ref,
    ]
    assert all(links[t.ref] == store.links_for_ticket(t.ref) for t in tickets[:50])
    assert store.links_for_tickets([]) == {}


def test_bookkeeping_of_many_records_is_one_query(store, monkeypatch):
    refs = [Ref("zendesk", str(i)) for i in range(1200)]
    with store.transaction():
        for n, ref in enumerate(refs):
            if n % 3 == 0:
                store.set_meta(ref, last_comment_id=str(n), tags_unseen=True)
    statements = counting_queries(store, monkeypatch)
    metas = store.get_metas(refs + [Ref("linear", "0")])
    assert len(statements) == 1
    monkeypatch.undo()
    assert all(metas[ref] == store.get_meta(ref) for ref in refs)
    assert metas[refs[3]] == {"last_comment_id": "3", "tags_unseen": True} and metas[refs[4]] == {}
    assert metas[Ref("linear", "0")] == {} and store.get_metas([]) == {}


def test_stats_for_syncd_status(store, db_path, store_backend):
    store.put_snapshot(ticket("1"))
    store.put_snapshot(issue("a", "ENG-1"))
    store.put_snapshot(issue("b", "ENG-2"))
    store.enqueue(action("k1"))
    stats = store.stats()
    assert stats["schema_version"] == SCHEMA_VERSION
    assert stats["snapshots"] == {"linear": 2, "zendesk": 1}
    assert stats["outbox"]["pending"] == 1 and stats["oldest_pending_seconds"] == 0.0
    if store_backend == "sqlite":
        assert stats["file_size"] >= os.path.getsize(db_path) > 0
        assert stats["path"] == str(db_path)
    else:
        assert stats["file_size"] > 0  # the tables of its schema, on the server
        assert stats["path"].startswith("postgresql://") and stats["backend"] == "postgresql"


# --- stored time order -------------------------------------------------------------

aware = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(9998, 1, 1),
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=30))]),
)


@given(aware, aware)
def test_stored_timestamps_sort_as_times_do(a, b):
    """SQL compares stored timestamps as text; that must agree with time order."""
    ta, tb = store_module._ts(a), store_module._ts(b)
    assert (ta < tb) == (a < b) and (ta == tb) == (a == b)


def test_the_order_of_existence_checks_of_mirrored_comments(db_path, clock):
    with Store(db_path, clock=clock) as s:
        s.add_link(Link(Ref("zendesk", "1"), Ref("github", "9001"), "comment"))
        s.add_link(Link(Ref("zendesk", "2"), Ref("github", "9002"), "comment"))
        s.set_meta(Ref("github", "9001"), mirrored_comments=["51", "52"])
        s.set_meta(Ref("github", "9002"), mirrored_comments=["53"])
        s.set_meta(Ref("github", "9003"), mirrored_comments=["54"])  # no link: not checked
        s.set_meta(Ref("linear", "x"), mirrored_comments=["55"])
        for cid in ("51", "52", "53", "54"):
            s.set_meta(Ref("github", f"comment:{cid}"), mirrored={"digest": "d", "deleted": False})
        assert s.comments_due("github", 10) == [("51", "9001", None), ("52", "9001", None), ("53", "9002", None)]
        s.set_meta(Ref("github", "comment:51"), present_at=T0, present_etag='"e1"')
        s.set_meta(Ref("github", "comment:53"), present_at=T0 - timedelta(hours=1))
        assert s.comments_due("github", 10) == [("52", "9001", None), ("53", "9002", None), ("51", "9001", '"e1"')]
        assert s.comments_due("github", 1) == [("52", "9001", None)]
        s.set_meta(Ref("github", "comment:52"), mirrored={"digest": "d", "deleted": True})  # noted already
        assert [c for c, _, _ in s.comments_due("github", 10)] == ["53", "51"]
        s.end_link(Ref("zendesk", "2"), Ref("github", "9002"), "ended")
        assert [c for c, _, _ in s.comments_due("github", 10)] == ["51"]


def test_tombstones_and_the_order_of_existence_checks(db_path, clock):
    with Store(db_path, clock=clock) as s:
        for n in (1, 2, 3):
            s.add_link(Link(Ref("zendesk", str(n)), Ref("jira", f"1000{n}"), "comment"))
        s.add_link(Link(Ref("zendesk", "4"), Ref("jira", "10001"), "comment"))  # one issue, two links
        s.add_link(Link(Ref("zendesk", "5"), Ref("linear", "x"), "comment"))
        assert s.presence_due("jira", 10) == [("10001", None), ("10002", None), ("10003", None)]
        s.set_meta(Ref("jira", "10001"), presence_at=T0, presence_etag='"e1"')
        s.set_meta(Ref("jira", "10003"), presence_at=T0 - timedelta(hours=1))
        assert s.presence_due("jira", 10) == [("10002", None), ("10003", None), ("10001", '"e1"')]
        assert s.presence_due("jira", 1) == [("10002", None)]

        assert s.mark_issue_gone(Ref("jira", "10002"), "ENG-2", "deleted")
        assert not s.mark_issue_gone(Ref("jira", "10002"), "ENG-2", "again")  # the first tombstone stays
        assert s.gone_issue(Ref("jira", "10002")) == {
            "key": "ENG-2",
            "reason": "deleted",
            "gone_at": "2024-05-01T12:00:00.000000Z",
        }
        assert s.gone_ids("jira", ["10001", "10002"]) == {"10002"}
        assert s.clear_issue_gone(Ref("jira", "10002")) and s.gone_issue(Ref("jira", "10002")) is None

        s.enqueue(Action("k1", "jira", "10001", IssueComment("a"), "issue:jira:10001"))
        s.enqueue(Action("k2", "jira", "10001", AttachTicket("u", "t", "s"), "issue:jira:10001"))
        s.enqueue(Action("k3", "zendesk", "1", TicketUpdate(note="n"), "ticket:zendesk:1"))
        assert s.drop_group("issue:jira:10001", "the issue is gone") == 2
        assert s.outbox_counts()["dropped"] == 2 and s.outbox_counts()["pending"] == 1
        assert {r.last_error for r in s.list_outbox("dropped")} == {"the issue is gone"}


# -- a lost or restored store ---------------------------------------------------------------------


def test_a_restored_copy_of_the_store_is_catching_up_until_every_feed_was_read(db_path, clock, tmp_path):
    with Store(db_path, clock=clock) as s:
        assert not s.catching_up("zendesk")  # a new store: the engine's first sync covers it
    with Store(db_path, clock=clock) as s:
        assert not s.catching_up("zendesk")  # the same file opened again
    copy = tmp_path / "backup.db"
    with sqlite3.connect(db_path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    db_path.unlink()
    copy.rename(db_path)
    with Store(db_path, clock=clock) as s:
        assert s.catching_up("zendesk") and s.catching_up("linear")
        s.caught_up("zendesk", ["zendesk", "linear"])
        assert not s.catching_up("zendesk") and s.catching_up("linear")
    with Store(db_path, clock=clock) as s:  # kept across a restart until every feed was read
        assert s.catching_up("linear")
        s.caught_up("linear", ["zendesk", "linear"])
        assert not s.catching_up("linear") and not s.catching_up("zendesk")


def test_an_action_to_check_before_sending_is_sending_with_no_attempt_until_known_unsent(store):
    store.enqueue(action("k1"))
    assert store.check_before_send("k1")
    (row,) = store.open_actions("zendesk:1")
    assert (row.state, row.attempts) == ("sending", 0)
    assert store.known_unsent(row.id)
    (row,) = store.open_actions("zendesk:1")
    assert (row.state, row.attempts) == ("pending", 0)
    store.mark_sending(row.id)
    assert not store.check_before_send("k1")  # sent once: delivery's own crash rule applies
    assert not store.known_unsent(row.id)
    assert store.get_action(row.id).state == "sending"


def test_tickets_shown_on_issues_wait_in_the_store(store):
    assert store.shown_unlinked() == []
    store.set_shown_unlinked([(Ref("linear", "i1"), "7"), (Ref("linear", "i1"), "7"), (Ref("jira", "10"), "8")])
    assert store.shown_unlinked() == [(Ref("jira", "10"), "8"), (Ref("linear", "i1"), "7")]
    store.set_shown_unlinked([])
    assert store.shown_unlinked() == []
