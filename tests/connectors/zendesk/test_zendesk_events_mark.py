"""The events mark stored with Zendesk's cursor (connectors/zendesk/connector.py,
_EventsMark and _EventsWindow.mark): it must keep moving, or every later poll
reads the events export again from where it stopped, and it must never let a
poll skip a comment no page was handed."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

import connectors.zendesk.connector as zendesk
from connectors.zendesk.connector import EVENTS_PATH, _EventsMark, _EventsWindow
from syncd.records import Comment
from tests.connectors.zendesk.test_zendesk_events_window import (  # noqa: F401 (the fixture)
    COMMENTS,
    EVENTS,
    Engine,
    bodies,
    connector,
    fake,
    make_tickets,
    note_each,
)


def mark(start: int, through: int, *pending: str) -> _EventsMark:
    return _EventsMark(start, through, frozenset(pending))


def span(m: _EventsMark | None) -> tuple[int, int, list[str]] | None:
    return None if m is None else (m.start, m.through, sorted(m.pending))


# -- joining the stored mark with a window's ------------------------------------


@pytest.mark.parametrize(
    "old, new, joined",
    [
        (mark(100, 200, "a"), mark(150, 300, "b"), (100, 300, ["a", "b"])),  # overlapping
        (mark(100, 200), mark(201, 300), (100, 300, [])),  # touching: 200 and 201 leave no second out
        (mark(150, 300), mark(100, 200, "b"), (100, 300, ["b"])),  # a window read back before the old mark
        (mark(100, 300), mark(150, 200), (100, 300, [])),  # inside it
        (mark(100, 200), mark(202, 300), (202, 300, [])),  # a second between: the later mark alone
        (mark(202, 300), mark(100, 200), (202, 300, [])),  # the later one, whichever came last
        (None, mark(100, 200), (100, 200, [])),
        (mark(100, 200), None, (100, 200, [])),
    ],
)
def test_marks_whose_spans_touch_are_joined_else_the_later_one_is_kept(old, new, joined):
    assert span(_EventsMark.join(old, new)) == joined


def test_marks_that_together_leave_out_too_many_tickets_are_not_joined(monkeypatch):
    monkeypatch.setattr(zendesk, "MARK_PENDING_MAX", 2)
    assert span(_EventsMark.join(mark(100, 200, "a", "b"), mark(150, 300, "b"))) == (100, 300, ["a", "b"])
    assert span(_EventsMark.join(mark(100, 200, "a", "b"), mark(150, 300, "c"))) == (150, 300, ["c"])
    assert _EventsMark.join(None, None) is None


# -- a window's mark ----------------------------------------------------------------


def comment(cid: int, second: int) -> Comment:
    return Comment(str(cid), f"comment {cid}", False, "1", datetime.fromtimestamp(second, timezone.utc))


def window_of(pages: list[tuple[int, int, dict[str, int]]]) -> _EventsWindow:
    """A window that read ``pages`` (start, end, {ticket: comment second}) and holds every comment."""
    window = _EventsWindow()
    window.open(pages[0][0])
    cid = 0
    for start, end, held in pages:
        window.new_page(start)
        for ticket, second in held.items():
            cid += 1
            window.hold(ticket, comment(cid, second))
        window.advance(end, end - 1)
    return window


def test_a_window_holding_too_many_tickets_marks_up_to_the_page_that_makes_them_so(monkeypatch):
    monkeypatch.setattr(zendesk, "MARK_PENDING_MAX", 3)
    window = window_of(
        [
            (100, 110, {"a": 101, "b": 110}),
            (110, 120, {"b": 115, "c": 112}),  # 110 is the last second of the page before, read again
            (120, 130, {"d": 121, "e": 125}),
            (130, 140, {"f": 131}),
        ]
    )
    # a, b and c fit; d and e would make five: the mark ends before their page's first second.
    assert span(window.mark()) == (100, 119, ["a", "b", "c"])
    monkeypatch.setattr(zendesk, "MARK_PENDING_MAX", 1)
    assert window.mark() is None  # the first page alone leaves out two: nothing is read whole
    monkeypatch.setattr(zendesk, "MARK_PENDING_MAX", 6)
    assert span(window.mark()) == (100, 139, ["a", "b", "c", "d", "e", "f"])


def test_a_window_mark_stops_at_a_hole_and_counts_the_tickets_a_page_failed(monkeypatch):
    monkeypatch.setattr(zendesk, "MARK_PENDING_MAX", 3)
    window = window_of([(100, 110, {"a": 101}), (110, 120, {"b": 111})])
    window.holes.append(115)
    assert span(window.mark()) == (100, 114, ["a", "b"])
    window.pending.update({"x", "y"})
    assert span(window.mark()) == (100, 109, ["a", "x", "y"])  # b's page would make four
    window.pending.update({"z", "w"})
    assert window.mark() is None


def test_tickets_let_go_for_memory_are_left_out_until_a_page_is_handed_them(monkeypatch):
    monkeypatch.setattr(zendesk, "MARK_PENDING_MAX", 3)
    window = window_of([(100, 110, {"a": 101, "b": 102}), (110, 120, {"c": 111, "d": 112})])
    window.trim(0, 10**9)  # every held comment let go, by the page it was read in
    assert window.held == [] and window.released == [(100, {"a", "b"}), (110, {"c", "d"})]
    assert span(window.mark()) == (100, 109, ["a", "b"])
    window.handed({"a", "c"})  # their pages' answers brought every comment up to their change
    assert span(window.mark()) == (100, 119, ["b", "d"])
    window.handed({"b", "d"})
    assert window.released == [] and span(window.mark()) == (100, 119, [])


# -- through the fake -------------------------------------------------------------


def event_starts(engine: Engine) -> list[int]:
    starts: list[int] = []
    engine.zd.http.session.hooks["response"].append(
        lambda r, *a, **k: (
            starts.append(int(r.request.url.split("start_time=")[1].split("&")[0]))
            if EVENTS_PATH in r.request.url
            else None
        )
    )
    return starts


def test_a_first_sync_over_two_runs_leaves_one_mark_over_both(fake, clock):
    ids = make_tickets(fake, clock, 60)
    clock.advance(120)
    engine = Engine(connector(fake, clock))
    engine.poll(pages=3)  # the first run stops with writes left
    first_run = json.loads(engine.cursor or "{}")["events"]
    engine.zd = connector(fake, clock)  # the next run: all it has is the stored cursor
    engine.poll()
    assert all(bodies(engine, t) == [f"Body {i}"] for i, t in enumerate(ids))
    joined = json.loads(engine.cursor or "{}")["events"]
    # The second run's window opened at its own tickets' creations; the stored mark still
    # starts at the first run's (without the join it started at the second run's window).
    assert joined["from"] == first_run["from"] and joined["through"] > first_run["through"]

    note_each(fake, clock, ids, "note on")  # the first sync's writes
    clock.advance(120)
    engine.read.clear()
    engine.zd = connector(fake, clock)
    starts = event_starts(engine)
    fake.reset_counts()
    engine.poll()
    assert all(bodies(engine, t) == [f"note on {t}"] for t in ids)
    # The first run's tickets start where the stream was read to, not at their creation.
    assert starts[0] == joined["through"] + 1 and fake.counts[COMMENTS] == 0
    assert fake.counts[EVENTS] == 7  # the 60 notes, ten a page, and the last second again
    later = json.loads(engine.cursor or "{}")["events"]
    assert later["from"] == joined["from"] and later["through"] > joined["through"]


def test_a_window_read_back_past_tickets_handed_before_still_leaves_a_mark(fake, clock, monkeypatch):
    """The cause of slow tickets at 100,000 links: a window opened at an old change reads
    the comments of every ticket changed since; those it let go for memory were counted
    as left out even once their pages were handed them, no mark was stored, and every
    later poll read the stream again from the same old place."""
    monkeypatch.setattr(zendesk, "EVENTS_HELD_MAX", 15)
    monkeypatch.setattr(zendesk, "MARK_PENDING_MAX", 10)
    ids = make_tickets(fake, clock, 60)
    clock.advance(120)
    engine = Engine(connector(fake, clock), keep_mark=False)  # a cursor stored without a mark
    engine.poll()
    note_each(fake, clock, ids, "note on")
    clock.advance(120)
    engine.read.clear()
    engine.keep_mark = True
    engine.poll()  # from every ticket's creation: 60 creations and 60 notes
    assert all(bodies(engine, t) == [f"note on {t}"] for t in ids)
    stored = json.loads(engine.cursor or "{}")["events"]
    assert stored["pending"] == []  # the tickets let go were handed with their pages
    last_note = int(max(t.updated_at for t, _ in engine.stored.values()).timestamp())
    assert stored["through"] >= last_note

    note_each(fake, clock, ids, "again on")
    clock.advance(120)
    engine.read.clear()
    starts = event_starts(engine)
    fake.reset_counts()
    engine.poll()
    assert all(bodies(engine, t) == [f"again on {t}"] for t in ids)
    assert starts[0] == stored["through"] + 1 and fake.counts[EVENTS] == 7 and fake.counts[COMMENTS] == 0


def test_a_window_holding_too_many_unasked_tickets_never_lets_their_comments_be_skipped(fake, clock, monkeypatch):
    monkeypatch.setattr(zendesk, "MARK_PENDING_MAX", 3)
    ids = make_tickets(fake, clock, 30)
    clock.advance(120)
    engine = Engine(connector(fake, clock), keep_mark=False)
    engine.poll()
    engine.keep_mark = True
    first_reply = int(clock().timestamp()) + 1
    for tid in ids[10:]:  # customers reply on twenty tickets the engine does not ask about now
        clock.advance(1)
        fake.add_comment(tid, f"reply on {tid}", author_id=fake.customer["id"])
    note_each(fake, clock, ids[:10], "note on")  # and ten are written to: their window opens at creation
    clock.advance(120)
    engine.read.clear()
    engine.skip = {str(t) for t in ids[10:]}  # quarantined, say
    engine.poll()
    assert all(bodies(engine, t) == [f"note on {t}"] for t in ids[:10])
    stored = _EventsMark.parse(engine.cursor)
    assert stored is not None and len(stored.pending) <= 3  # a mark, short of the replies' pages
    for tid in ids[10:]:
        if str(tid) not in stored.pending:
            # A ticket the mark does not name had no comment in its span that no page was handed.
            assert stored.through < first_reply

    engine.skip = set()
    note_each(fake, clock, ids[10:], "note on")
    clock.advance(120)
    engine.read.clear()
    engine.poll()
    assert all(bodies(engine, t) == [f"reply on {t}", f"note on {t}"] for t in ids[10:])
