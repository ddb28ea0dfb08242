"""The engine reads a page's comments in one call (Helpdesk.page_comments), and
delivery sends a round's ticket updates to a bulk helpdesk in one call
(Helpdesk.update_each), whose echoes it still tells apart."""

from __future__ import annotations

from datetime import datetime

from connectors.base import CommentAsk, TicketWrite, WriteResult
from mappings.planner import PlanSettings
from syncd.engine import Engine
from syncd.errors import PayloadError
from syncd.records import Comment
from syncd.store import Store

from .doubles import Clock, MemoryHelpdesk, MemoryTracker


class PagedDesk(MemoryHelpdesk):
    """A helpdesk with a feed of comments and a bulk write, recording how it was asked."""

    comments_by_page = True
    bulk_updates = 100

    def __init__(self, *, clock: Clock):
        super().__init__(clock=clock)
        self.asked: list[list[CommentAsk]] = []
        self.bulk_calls: list[list[str]] = []

    def page_comments(self, asks: list[CommentAsk]) -> dict[str, list[Comment] | PayloadError]:
        self.asked.append(list(asks))
        return {a.ticket_id: self.comments(a.ticket_id, after=a.after) for a in asks}

    def update_each(self, writes: list[TicketWrite]) -> dict[str, WriteResult | Exception]:
        self.bulk_calls.append([w.ticket_id for w in writes])
        out: dict[str, WriteResult | Exception] = {}
        for w in writes:
            self.update_ticket(w.ticket_id, w.update, w.key, current=w.current)
            out[w.ticket_id] = WriteResult(id=w.ticket_id)  # like a bulk job: no time in the answer
        return out


def engine_with(tmp_path, clock: Clock) -> tuple[Engine, PagedDesk, MemoryTracker, Store]:
    desk, tracker = PagedDesk(clock=clock), MemoryTracker(clock=clock)
    store = Store(tmp_path / "syncd.db", clock=clock)
    settings = PlanSettings(helpdesk="desk", helpdesk_name="Desk")
    return Engine(store, desk, {"tracker": tracker}, settings, clock=clock), desk, tracker, store


def test_a_page_of_tickets_is_one_comments_call_and_each_ask_says_what_is_new(tmp_path):
    clock = Clock()
    engine, desk, tracker, store = engine_with(tmp_path, clock)
    desk.feed.page_size = 10  # one page holds every change of the test
    try:
        tracker.put(1)
        tracker.put(2)
        engine.poll("tracker")
        created: dict[str, datetime] = {}
        for tid, key in (("1", "ENG-1"), ("2", "ENG-2")):
            desk.put(tid)
            created[tid] = desk.tickets[tid].created_at  # type: ignore[assignment]
            clock.advance()
            desk.comment(tid, f"Same as {key}")
        clock.advance()
        engine.poll("desk")
        [first] = desk.asked
        assert sorted({a.ticket_id for a in first}) == ["1", "2"]  # the whole page in one call
        for ask in first:
            assert ask.after is None and ask.since == created[ask.ticket_id]  # never read: all of it
            assert created[ask.ticket_id] <= ask.until <= desk.tickets[ask.ticket_id].updated_at  # its version
        stored = {a.ticket_id: store.get_snapshot(desk.tickets[a.ticket_id].ref) for a in first}

        clock.advance()
        report = engine.deliver()
        assert report.done == 4  # two notes, two links
        assert desk.bulk_calls == [["1", "2"]]  # both notes in one bulk write, each its own marker
        keys = {tid: key for tid, _, key in desk.writes}
        assert len(set(keys.values())) == 2

        clock.advance()
        echo = engine.poll("desk")
        second = desk.asked[-1]
        for ask in second:
            snapshot = stored[ask.ticket_id]
            assert ask.after is not None and snapshot is not None and ask.since == snapshot.updated_at
        # The bulk answer had no time: the echoes are told by their markers.
        assert (echo.changed, echo.echoes) == (2, 2)

        clock.advance()
        desk.comment("1", "The customer asks for news")
        clock.advance()
        news = engine.poll("desk")
        assert (news.changed, news.echoes) == (1, 0)
    finally:
        store.close()
