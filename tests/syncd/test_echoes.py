"""syncd's own writes coming back in a feed are counted apart from news (engine.only_echo)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from mappings.planner import PlanSettings
from syncd.engine import Engine, only_echo
from syncd.records import Attachment, Issue, Ref, StateCategory
from syncd.store import Store

from .doubles import Clock, MemoryHelpdesk, MemoryTracker

T0 = datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc)
ISSUE = Issue(
    ref=Ref("tracker", "1"),
    key="ENG-1",
    url="https://tracker.example/ENG-1",
    title="Search lags",
    state=StateCategory.STARTED,
    state_name="In Progress",
    updated_at=T0,
    assignee="Ada Novak",
    attachments=(Attachment("https://desk.example/tickets/9", "a person's link"),),
)
LATER = T0 + timedelta(minutes=3)
OURS = Attachment("https://desk.example/tickets/4", "Ticket #4", marker="0123456789abcdef0123")


def test_only_the_time_and_syncds_own_link_moved_is_an_echo():
    assert only_echo(ISSUE, replace(ISSUE, updated_at=LATER))
    assert only_echo(ISSUE, replace(ISSUE, updated_at=LATER, attachments=(*ISSUE.attachments, OURS)))


def test_a_persons_change_is_news():
    person = Attachment("https://desk.example/tickets/5", "linked by hand")
    assert not only_echo(ISSUE, replace(ISSUE, updated_at=LATER, attachments=(*ISSUE.attachments, person)))
    assert not only_echo(ISSUE, replace(ISSUE, updated_at=LATER, state_name="Done", state=StateCategory.COMPLETED))
    assert not only_echo(ISSUE, replace(ISSUE, updated_at=LATER, assignee=None))
    assert not only_echo(ISSUE, replace(ISSUE, updated_at=LATER, title="Search lags by an hour"))


def test_a_tickets_echo_is_counted_apart_and_a_persons_note_after_it_is_news(tmp_path):
    clock = Clock()
    desk, tracker = MemoryHelpdesk(clock=clock), MemoryTracker(clock=clock)
    store = Store(tmp_path / "syncd.db", clock=clock)
    engine = Engine(store, desk, {"tracker": tracker}, PlanSettings(helpdesk="desk", helpdesk_name="Desk"), clock=clock)
    try:
        tracker.put(1)
        desk.put("1")
        clock.advance()
        desk.comment("1", "Same as ENG-1, customer is blocked")
        clock.advance()
        first = engine.poll("desk")
        assert first.changed >= 1 and first.echoes == 0
        clock.advance()
        assert engine.deliver().done == 2  # the ticket's note and the issue's link
        clock.advance()
        echo = engine.poll("desk")
        assert (echo.changed, echo.echoes) == (1, 1)  # syncd's own note, read back
        clock.advance()
        desk.comment("1", "The customer asks for news")
        clock.advance()
        news = engine.poll("desk")
        assert (news.changed, news.echoes) == (1, 0)
    finally:
        store.close()
