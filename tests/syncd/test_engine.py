"""The engine, built directly: a real Store in tmp_path and in-memory connectors (no HTTP, no sandbox).

Each test drives :class:`syncd.engine.Engine` through its public methods
(``poll``, ``deliver``, ``unlink``, ``cycle``) on the test's clock, and
reads what it decided back from the store and from the doubles.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from connectors.base import Rejected
from mappings.planner import PlanSettings
from syncd.engine import Engine
from syncd.errors import RateLimited, TransientError
from syncd.records import Ref, StateCategory
from syncd.store import Store
from syncd.writes import TICKET_UPDATE

from .doubles import Clock, MemoryHelpdesk, MemoryTracker

ISSUE_1 = Ref("tracker", "id1")


class World:
    def __init__(self, tmp_path):
        self.clock = Clock()
        self.desk = MemoryHelpdesk(clock=self.clock)
        self.tracker = MemoryTracker(clock=self.clock)
        self.path = tmp_path / "syncd.db"
        self.store = Store(self.path, clock=self.clock)
        self.settings = PlanSettings(helpdesk="desk", helpdesk_name="Desk")
        self.engine = Engine(self.store, self.desk, {"tracker": self.tracker}, self.settings, clock=self.clock)

    def committed(self, sql: str) -> list[tuple]:
        """What another connection reads: only what is committed."""
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as conn:
            return conn.execute(sql).fetchall()

    def actions(self, op: str | None = None) -> list:
        return [r for r in self.store.list_outbox(limit=1000) if op is None or r.op == op]

    def linked_issues(self, ticket_id: str) -> list[Ref]:
        return [r.issue for r in self.store.links_for_ticket(Ref("desk", ticket_id))]

    def ticket_naming(self, ticket_id: str, text: str) -> None:
        self.desk.put(ticket_id)
        self.clock.advance()
        self.desk.comment(ticket_id, text)
        self.clock.advance()


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.store.close()


def test_a_ticket_naming_an_issue_is_linked_and_its_writes_are_planned_with_the_cursor(world):
    world.tracker.put(1)
    world.ticket_naming("1", "Same as ENG-1, customer is blocked")
    at_cursor = {}
    set_cursor = world.store.set_cursor

    def spy(connector, value):
        # The page's link and writes are in the open transaction, not yet committed; the cursor joins them.
        at_cursor["open"] = (len(world.store.links_for_ticket(Ref("desk", "1"))), len(world.actions()))
        at_cursor["committed"] = (
            world.committed("SELECT COUNT(*) FROM links")[0][0],
            world.committed("SELECT COUNT(*) FROM outbox")[0][0],
        )
        set_cursor(connector, value)

    world.store.set_cursor = spy
    report = world.engine.poll("desk")

    assert report.error is None and report.links == 1
    assert world.linked_issues("1") == [ISSUE_1]
    assert sorted(a.op for a in world.actions()) == ["issue.attach", "ticket.update"]
    assert at_cursor == {"open": (1, 2), "committed": (0, 0)}
    assert world.committed("SELECT value FROM cursors WHERE connector = 'desk'") == [("2",)]
    assert world.committed("SELECT COUNT(*) FROM links")[0][0] == 1
    assert world.committed("SELECT COUNT(*) FROM outbox")[0][0] == 2


def test_a_page_replayed_onto_a_store_restored_from_before_it_writes_nothing_twice(world, tmp_path):
    world.tracker.put(1)
    world.ticket_naming("1", "see ENG-1")
    world.engine.poll("desk")
    world.engine.deliver()
    first = sorted((a.op, a.key) for a in world.actions())
    written = (list(world.desk.writes), list(world.tracker.writes))

    # The store is restored from a copy taken before that page: the page is read again from the start.
    with Store(tmp_path / "restored.db", clock=world.clock) as restored:
        engine = Engine(restored, world.desk, {"tracker": world.tracker}, world.settings, clock=world.clock)
        engine.cycle()
        replanned = sorted((a.op, a.key) for a in restored.list_outbox(limit=1000))
        states = {a.state for a in restored.list_outbox(limit=1000)}
        links = [r.issue for r in restored.links_for_ticket(Ref("desk", "1"))]

    assert replanned == first  # the same decisions under the same keys ...
    assert states == {"done"}  # ... found already written (their markers), so ...
    assert (world.desk.writes, world.tracker.writes) == written  # ... nothing is sent twice
    assert links == [ISSUE_1]


def test_an_issue_that_moves_plans_one_update_for_each_linked_ticket(world):
    world.tracker.put(1)
    world.ticket_naming("1", "see ENG-1")
    world.ticket_naming("2", "ENG-1 again")
    world.desk.put("3")  # not linked
    world.engine.poll("desk")
    world.engine.poll("tracker")
    before = {a.key for a in world.actions(TICKET_UPDATE)}

    world.tracker.put(1, StateCategory.STARTED, "In Progress")
    report = world.engine.poll("tracker")

    new = [a for a in world.actions(TICKET_UPDATE) if a.key not in before]
    assert sorted(a.target for a in new) == ["1", "2"]
    assert all("In Progress" in a.payload["note"] for a in new)
    assert report.actions == 2


def test_a_page_that_fails_part_way_commits_nothing_and_the_cursor_stays(world):
    world.tracker.put(1)
    world.tracker.put(2)
    world.desk.put("1")
    world.desk.put("2")
    world.desk.feed.page_size = 10  # one page: ticket 1 names ENG-1, ticket 2 names ENG-2
    world.desk.comment("1", "see ENG-1")
    world.desk.comment("2", "see ENG-2")
    world.tracker.read_failures["ENG-2"] = TransientError("tracker", "503 from the tracker", status=503)

    report = world.engine.poll("desk")

    assert report.error and "503" in report.error
    assert world.store.get_cursor("desk") is None
    assert world.linked_issues("1") == [] and world.actions() == []
    assert world.store.get_snapshot(Ref("desk", "1")) is None  # ticket 1 was handled before the failure

    report = world.engine.poll("desk")  # the next poll resumes from the same place and loses nothing
    assert report.error is None
    assert world.linked_issues("1") == [ISSUE_1] and world.linked_issues("2") == [Ref("tracker", "id2")]
    assert world.store.get_cursor("desk") == "4"


def test_a_record_the_connector_could_not_read_is_quarantined_with_why_and_the_page_goes_on(world):
    world.tracker.put(1)
    world.ticket_naming("1", "see ENG-1")
    world.desk.feed.entries.insert(1, Rejected("7", "status 'weird' is not a ticket status", {"id": 7}))
    world.desk.put("8")

    report = world.engine.poll("desk")

    assert report.error is None and report.quarantined == 1
    [row] = world.store.list_quarantine()
    assert (row.connector, row.record_id, row.reason) == ("desk", "7", "status 'weird' is not a ticket status")
    assert world.linked_issues("1") == [ISSUE_1]
    assert world.store.get_snapshot(Ref("desk", "8")) is not None
    assert world.store.get_cursor("desk") == "4"


def test_the_echo_of_syncd_s_own_note_is_not_taken_for_a_person_naming_the_issue(world):
    world.tracker.put(1)
    world.ticket_naming("1", "see ENG-1")
    world.engine.cycle()
    world.clock.advance()
    assert world.engine.unlink("1", "ENG-1")
    world.engine.deliver()
    notes = [c.body for c in world.desk.notes["1"] if c.author_id == "syncd"]
    assert len(notes) == 2 and "ENG-1" in notes[-1]  # the unlink note names the issue, with its marker
    assert "syncd_linked" not in world.desk.tickets["1"].tags
    world.clock.advance()

    report = world.engine.cycle()  # reads the ticket and the issue syncd just wrote to

    assert report.ok
    # Both echoes were read: the issue with syncd's attachment, the ticket after each of syncd's two notes ...
    assert [(p.connector, p.changed) for p in report.polls] == [("tracker", 1), ("desk", 2)]
    assert world.linked_issues("1") == []  # ... and the ticket is not linked again by its own note
    assert [a.state for a in world.actions()] == ["done"] * len(world.actions())
    assert len(world.desk.writes) == 2


def test_a_connector_waiting_for_its_rate_limit_is_not_polled(world):
    polled = []
    world.tracker.poll = lambda cursor: polled.append(cursor) or iter(())
    until = world.clock() + timedelta(minutes=10)
    world.engine.parking.park(RateLimited("tracker", "429", until=until, service="Tracker"))

    report = world.engine.poll("tracker")

    assert polled == [] and report.rate_limited_until == until and report.pages == 0
    world.clock.advance(minutes=10)
    assert world.engine.poll("tracker").rate_limited_until is None
    assert polled == [None]


def test_an_issue_gone_from_its_tracker_ends_its_links_with_one_note_each(world):
    world.tracker.put(1)
    world.ticket_naming("1", "see ENG-1")
    world.ticket_naming("2", "ENG-1 too")
    world.engine.poll("desk")
    world.tracker.gone.add("id1")  # deleted before syncd's writes to it go out

    world.engine.deliver()  # the writes to the issue meet Gone: the links end, each ticket is told
    world.engine.deliver()

    assert world.linked_issues("1") == [] and world.linked_issues("2") == []
    assert world.store.gone_issue(ISSUE_1) is not None
    for ticket in ("1", "2"):
        gone_notes = [u for t, u, _ in world.desk.writes if t == ticket and u.note and "deleted" in u.note]
        assert len(gone_notes) == 1, world.desk.writes
    assert world.tracker.writes == []  # nothing reached the deleted issue


class LearningTracker(MemoryTracker):
    """A tracker that follows every team: its bare keys are known once it has asked its service."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.learned = False
        self.failure: Exception | None = None

    def learn_keys(self) -> None:
        if self.failure is not None:
            raise self.failure
        self.learned = True

    def link_patterns(self) -> list[str]:
        return super().link_patterns() if self.learned else []


def test_bare_keys_a_tracker_learns_from_its_service_are_recognised_before_it_is_polled(tmp_path):
    world = World(tmp_path)
    world.tracker = LearningTracker(clock=world.clock)
    world.engine = Engine(world.store, world.desk, {"tracker": world.tracker}, world.settings, clock=world.clock)
    world.tracker.put(1)
    world.ticket_naming("1", "Same as ENG-1")
    report = world.engine.poll("desk")  # the helpdesk first: the tracker has not been polled
    assert report.error is None and world.linked_issues("1") == [ISSUE_1]
    world.store.close()


def test_a_tracker_that_cannot_learn_its_keys_is_said_and_the_helpdesk_poll_goes_on(tmp_path):
    from structlog.testing import capture_logs

    world = World(tmp_path)
    world.tracker = LearningTracker(clock=world.clock)
    world.tracker.failure = TransientError("tracker", "POST /graphql failed: cannot connect")
    world.engine = Engine(world.store, world.desk, {"tracker": world.tracker}, world.settings, clock=world.clock)
    world.tracker.put(1)
    world.ticket_naming("1", "Same as ENG-1")
    with capture_logs() as logs:
        report = world.engine.poll("desk")
    assert report.error is None and world.linked_issues("1") == []
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert warning["connector"] == "tracker" and "cannot connect" in warning["error"]
    world.store.close()


def test_a_link_field_value_no_tracker_recognises_is_logged_with_the_value(world):
    from structlog.testing import capture_logs

    world.desk.link_field_ids = ("100",)
    world.desk.put("1", fields={"100": "XYZ-9"})
    with capture_logs() as logs:
        world.engine.poll("desk")
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert (warning["ticket"], warning["field"], warning["value"]) == ("#1", "100", "XYZ-9")


# -- the mapping files' [links] ---------------------------------------------------------------------


def test_links_fields_and_trackers_of_the_mapping_files_decide_what_tickets_are_scanned_for(world, tmp_path):
    from mappings.routes import Mappings

    world.tracker.put(1)
    world.tracker.put(2)
    world.desk.put("1", fields={"777": "ENG-1"})  # a field only the mapping files name
    world.clock.advance()
    scanning = Mappings(link_fields=("777",))
    with Store(tmp_path / "fields.db", clock=world.clock) as store:
        engine = Engine(
            store, world.desk, {"tracker": world.tracker}, world.settings, clock=world.clock, mappings=scanning
        )
        engine.poll("desk")
        assert [r.issue for r in store.links_for_ticket(Ref("desk", "1"))] == [ISSUE_1]
    world.engine.poll("desk")  # without [links] fields: the field is not read
    assert world.linked_issues("1") == []

    world.ticket_naming("2", "see ENG-2")
    other_only = Mappings(link_trackers=("elsewhere",))
    with Store(tmp_path / "trackers.db", clock=world.clock) as store:
        engine = Engine(
            store, world.desk, {"tracker": world.tracker}, world.settings, clock=world.clock, mappings=other_only
        )
        engine.poll("desk")
        assert store.links_for_ticket(Ref("desk", "2")) == []  # this tracker's keys are not looked for


def test_the_collector_is_paused_for_a_page_and_runs_as_before_after_it():
    import gc

    from syncd.engine import collector_paused, paused_pages

    was = gc.isenabled()
    try:
        gc.enable()
        with collector_paused():
            assert not gc.isenabled()
            with collector_paused():  # a page of another thread, or nested work
                assert not gc.isenabled()
            assert not gc.isenabled()  # still inside the first
        assert gc.isenabled()
        with pytest.raises(ValueError), collector_paused():
            raise ValueError("a failed page")
        assert gc.isenabled()
        gc.disable()  # switched off by whoever runs syncd: left off
        with collector_paused():
            pass
        assert not gc.isenabled()
        gc.enable()

        def feed():
            for n in range(3):
                assert not gc.isenabled()  # each page read with the collector paused
                yield n

        seen = []
        for page in paused_pages(feed()):
            assert gc.isenabled()  # and running between pages
            seen.append(page)
        assert seen == [0, 1, 2]
    finally:
        (gc.enable if was else gc.disable)()


def test_pages_of_threads_that_overlap_still_collect_when_much_is_left_allocated(monkeypatch):
    """Pages of several threads may keep the collector paused past each one: a page that
    ends with more objects left allocated than PAUSED_ALLOCATIONS_MAX runs a collection."""
    import gc

    import syncd.engine as engine_module
    from syncd.engine import collector_paused

    monkeypatch.setattr(engine_module, "PAUSED_ALLOCATIONS_MAX", 1000)
    collected: list[int] = []
    real_collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: collected.append(1) or real_collect(*a))
    was = gc.isenabled()
    try:
        gc.enable()
        real_collect()
        with collector_paused():  # another thread's page, still going
            with collector_paused():
                kept = [[n] for n in range(100)]  # a page that leaves little behind
            assert collected == [] and not gc.isenabled()
            with collector_paused():
                kept = [[n] for n in range(5000)]  # and one that leaves much
            assert collected == [1] and not gc.isenabled()  # collected, still paused for the other
        assert gc.isenabled()
        assert len(kept) == 5000
    finally:
        (gc.enable if was else gc.disable)()
