"""One ticket events window per poll, through the sandbox's Zendesk fake: the pages of
a poll share what was read of the events export, counted by the fake's requests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

import connectors.zendesk.connector as zendesk
from connectors.base import CommentAsk
from connectors.zendesk.connector import EVENTS_PATH, ZendeskConfig, ZendeskConnector
from connectors.zendesk.fake import SANDBOX_EMAIL, SANDBOX_TOKEN, ZendeskFake
from syncd.errors import PayloadError
from syncd.records import Comment, Ticket
from syncd.sandbox.server import Sandbox
from tests.connectors.conftest import Clock

EVENTS = f"GET {EVENTS_PATH}"
COMMENTS = "GET /api/v2/tickets/{id}/comments"


@pytest.fixture
def fake(clock, monkeypatch):
    zd = ZendeskFake(clock=clock)
    # The real export's 1,000 events a page and the feed's 1,000 tickets, scaled down to
    # ten each. At full size an events page is worth 1 % of a page's reads; here that is
    # nothing: the window reads on while a ticket is left (the rule that stops it is
    # tested in test_zendesk_page_comments).
    zd.events_page_size = 10
    monkeypatch.setattr(zendesk, "EVENTS_PAGE_WORTH", 0)
    zd.customer = zd.add_user("Hannah", "hannah@northwind.example")
    with Sandbox([zd]):
        yield zd


def connector(fake: ZendeskFake, clock: Clock) -> ZendeskConnector:
    config = ZendeskConfig(kind="zendesk", url=fake.base_url, email=SANDBOX_EMAIL, token=SANDBOX_TOKEN, page_size=10)
    return ZendeskConnector("zd", config, sleep=lambda _s: None, clock=clock)


@dataclass
class Engine:
    """What the engine keeps of each ticket and how it asks for a page's comments
    (syncd/engine.py, _ticket_page): ``since`` is the change last stored once a
    comment was read, else the ticket's creation; the cursor is stored after the
    page's comments were read."""

    zd: ZendeskConnector
    cursor: str | None = None
    stored: dict[str, tuple[Ticket, str | None]] = field(default_factory=dict)
    read: dict[str, list[Comment]] = field(default_factory=dict)
    asks: list[list[CommentAsk]] = field(default_factory=list)
    store_results: bool = True
    between_pages: list = field(default_factory=list)
    keep_mark: bool = True  # False: the cursor is stored without the events mark
    skip: set[str] = field(default_factory=set)  # tickets the engine does not ask about

    def ask(self, ticket: Ticket) -> CommentAsk:
        prev, after = self.stored.get(ticket.ref.id, (None, None))
        since = prev.updated_at if after and prev is not None else ticket.created_at
        since = min(since, ticket.updated_at) if since is not None else None
        return CommentAsk(ticket.ref.id, after, since, ticket.updated_at)

    def poll(self, pages: int | None = None) -> None:
        """One poll; with ``pages``, a run that stops after that many (``syncd once`` with writes left)."""
        feed = self.zd.poll(self.cursor)
        for done, page in enumerate(feed):
            if pages is not None and done == pages:
                feed.close()
                return
            asks = [self.ask(t) for t in page.records if t.ref.id not in self.skip]
            self.asks.append(asks)
            answer = self.zd.page_comments(asks) if asks else {}
            for ticket in (t for t in page.records if t.ref.id not in self.skip):
                comments = answer[ticket.ref.id]
                assert not isinstance(comments, PayloadError)
                self.read.setdefault(ticket.ref.id, []).extend(comments)
                if self.store_results:
                    last = comments[-1].id if comments else self.stored.get(ticket.ref.id, (None, None))[1]
                    self.stored[ticket.ref.id] = (ticket, last)
            self.cursor = page.cursor  # stored once the page is committed, as the engine does
            if not self.keep_mark and self.cursor is not None:
                self.cursor = json.dumps({k: v for k, v in json.loads(self.cursor).items() if k != "events"})
            if self.between_pages:
                self.between_pages.pop(0)()


def make_tickets(fake: ZendeskFake, clock: Clock, n: int) -> list[int]:
    ids = []
    for i in range(n):
        clock.advance(1)  # one a second, as an account fills
        ids.append(fake.create_ticket(f"Subject {i}", f"Body {i}", requester_id=fake.customer["id"])["id"])
    return ids


def note_each(fake: ZendeskFake, clock: Clock, ids: list[int], text: str) -> None:
    for tid in ids:
        clock.advance(1)
        fake.add_comment(tid, f"{text} {tid}", public=False, author_id=fake.api_user["id"])


def bodies(engine: Engine, tid: int) -> list[str]:
    return [c.body for c in engine.read.get(str(tid), [])]


def test_one_window_serves_every_page_of_the_poll_after_a_write(fake, clock):
    ids = make_tickets(fake, clock, 50)
    clock.advance(120)
    engine = Engine(connector(fake, clock), keep_mark=False)  # from the stored changes
    engine.poll()
    assert all(bodies(engine, t) == [f"Body {i}"] for i, t in enumerate(ids))
    first_sync = fake.counts[EVENTS]
    assert first_sync <= 7 and fake.counts[COMMENTS] == 0  # 50 events, 10 a page, read forward once

    note_each(fake, clock, ids, "syncd's note on")  # the writes of the first sync, one a second
    clock.advance(120)
    fake.reset_counts()
    engine.asks.clear()
    engine.read.clear()
    engine.poll()
    assert len(engine.asks) == 5  # five pages of ten written tickets
    assert all(bodies(engine, t) == [f"syncd's note on {t}"] for t in ids)
    # One stream read forward: 50 creations and 50 notes, ten events a page, once.
    windowed = fake.counts[EVENTS]
    assert windowed == 11 and fake.counts[COMMENTS] == 0

    # The same asks page by page, each from its own earliest change (no window shared
    # between the pages, as before), read the creations again for every page.
    fake.reset_counts()
    zd = connector(fake, clock)
    for asks in engine.asks:
        answer = zd.page_comments(asks)
        assert all(not isinstance(v, PayloadError) and len(v) == 1 for v in answer.values())
    assert fake.counts[EVENTS] >= 2 * windowed


def test_the_cycle_after_a_write_reads_from_where_the_last_poll_read_the_stream_to(fake, clock):
    ids = make_tickets(fake, clock, 50)
    clock.advance(120)
    engine = Engine(connector(fake, clock))
    engine.poll()
    assert engine.cursor is not None
    mark = json.loads(engine.cursor)["events"]  # stored with the feed's position
    last = int(max(t.updated_at for t, _ in engine.stored.values()).timestamp())
    assert mark["through"] >= last and mark["pending"] == []  # every ticket was handed its comments

    note_each(fake, clock, ids, "syncd's note on")
    clock.advance(120)
    fake.reset_counts()
    engine.read.clear()
    starts: list[int] = []
    engine.zd = connector(fake, clock)  # another process: all it has is the stored cursor
    engine.zd.http.session.hooks["response"].append(
        lambda r, *a, **k: (
            starts.append(int(r.request.url.split("start_time=")[1].split("&")[0]))
            if EVENTS_PATH in r.request.url
            else None
        )
    )
    engine.poll()
    assert all(bodies(engine, t) == [f"syncd's note on {t}"] for t in ids)
    assert starts[0] == mark["through"] + 1  # read whole: not again, nor the tickets' creations again
    # The 50 notes, ten events a page, each page read once: five pages and the last
    # second's again (without the mark: from the first creation, 11 pages).
    assert fake.counts[EVENTS] == 6 and fake.counts[COMMENTS] == 0


def test_a_ticket_left_out_of_the_mark_is_read_from_its_stored_change(fake, clock):
    ids = make_tickets(fake, clock, 20)
    clock.advance(120)
    engine = Engine(connector(fake, clock))

    def agent_replies() -> None:  # after the first page: a reply the engine will not ask for
        fake.add_comment(ids[3], "hidden reply", author_id=fake.customer["id"])
        clock.advance(5)  # the window reads past the hidden reply's second
        fake.add_comment(ids[15], "later reply", author_id=fake.customer["id"])
        engine.skip = {str(ids[3])}  # as the engine skips a ticket it holds already, or one rejected

    engine.between_pages = [agent_replies]
    engine.poll()
    mark = json.loads(engine.cursor or "{}")["events"]
    assert mark["pending"] == [str(ids[3])]  # its reply was read by the window, never handed
    assert bodies(engine, ids[15]) == ["Body 15", "later reply"]

    engine.skip = set()
    note_each(fake, clock, ids, "note on")
    clock.advance(120)
    engine.read.clear()
    engine.poll()
    assert bodies(engine, ids[3]) == ["hidden reply", f"note on {ids[3]}"]
    assert all(bodies(engine, t) == [f"note on {t}"] for t in ids if t != ids[3])
    # Handed its reply now, the ticket is no longer left out of the stored mark.
    assert json.loads(engine.cursor or "{}")["events"]["pending"] == []


def test_before_the_polls_last_page_the_window_reads_on_for_the_pages_to_come(fake, clock, monkeypatch):
    """An events page that covers one ticket left on a page also serves the next page: the
    reads-left rule (an events page is worth EVENTS_PAGE_WORTH reads) holds on the last page only."""
    monkeypatch.setattr(zendesk, "EVENTS_PAGE_WORTH", 10)
    ids = make_tickets(fake, clock, 30)
    clock.advance(120)
    engine = Engine(connector(fake, clock))
    engine.poll()
    assert all(bodies(engine, t) == [f"Body {i}"] for i, t in enumerate(ids))
    # Each events page ends in the second of its last ticket, which the next page repeats:
    # the last ticket of a page is covered only by the next events page.
    assert fake.counts[EVENTS] == 4 and fake.counts[COMMENTS] == 0


def test_a_ticket_changed_again_during_the_poll_gets_only_its_new_comment(fake, clock):
    ids = make_tickets(fake, clock, 30)
    clock.advance(120)
    engine = Engine(connector(fake, clock))
    engine.poll()

    def agent_writes_again() -> None:
        clock.advance(1)
        fake.add_comment(ids[0], "agent again on the first ticket", public=False, author_id=fake.api_user["id"])

    note_each(fake, clock, ids, "note on")
    clock.advance(120)
    engine.read.clear()
    engine.between_pages = [agent_writes_again]  # after the first page, listing ids[0], committed
    fake.reset_counts()
    engine.poll()
    assert bodies(engine, ids[0]) == [f"note on {ids[0]}", "agent again on the first ticket"]
    assert all(bodies(engine, t) == [f"note on {t}"] for t in ids[1:])
    assert sum(1 for asks in engine.asks[-4:] for a in asks if a.ticket_id == str(ids[0])) == 2
    assert fake.counts[COMMENTS] == 0


def test_a_page_that_was_not_committed_leaves_its_tickets_to_be_read_again(fake, clock):
    """Comments handed to a page are let go; a later ask whose ``after`` does not show them
    read (the page's tickets were not stored) is read on its own, never answered short."""
    ids = make_tickets(fake, clock, 30)
    clock.advance(120)
    engine = Engine(connector(fake, clock))
    engine.poll()
    note_each(fake, clock, ids, "note on")
    clock.advance(120)
    engine.read.clear()
    engine.store_results = False

    def agent_writes_again() -> None:
        clock.advance(1)
        fake.add_comment(ids[0], "agent again", public=False, author_id=fake.api_user["id"])

    engine.between_pages = [agent_writes_again]
    fake.reset_counts()
    engine.poll()
    assert bodies(engine, ids[0]) == [f"note on {ids[0]}", f"note on {ids[0]}", "agent again"]
    assert fake.counts[COMMENTS] == 1  # that ticket, read on its own


def test_the_last_second_read_is_read_again_for_a_later_page(fake, clock):
    """The fake here does not leave out the last minute: a comment made in the second the
    stream ended at, after it was read, is found by the next page that lists its ticket."""
    ids = make_tickets(fake, clock, 12)
    clock.advance(120)
    engine = Engine(connector(fake, clock))
    engine.poll()
    note_each(fake, clock, ids[:10], "note on")  # a first page of ten
    fake.add_comment(ids[10], f"note on {ids[10]}", public=False, author_id=fake.api_user["id"])  # same second
    late = ids[11]

    def comment_in_the_same_second() -> None:
        fake.add_comment(late, "same second", public=False, author_id=fake.api_user["id"])

    engine.read.clear()
    engine.between_pages = [comment_in_the_same_second]
    fake.reset_counts()
    engine.poll()
    assert [len(asks) for asks in engine.asks[-2:]] == [10, 2]
    assert bodies(engine, late) == ["same second"]
    assert all(bodies(engine, t) == [f"note on {t}"] for t in ids[:11])  # the repeated second once
    assert fake.counts[COMMENTS] == 0


def test_a_second_older_than_the_exports_last_minute_is_not_read_again(fake, clock):
    """Where the stream ended more than a minute before the read (the real export leaves
    that minute out), its last second is whole: a later page whose tickets changed in it
    sends no events request."""
    ids = make_tickets(fake, clock, 11)
    clock.advance(120)
    engine = Engine(connector(fake, clock))
    engine.poll()
    note_each(fake, clock, ids[:10], "note on")
    fake.add_comment(ids[10], f"note on {ids[10]}", public=False, author_id=fake.api_user["id"])  # same second
    clock.advance(120)
    engine.read.clear()
    seen: list[int] = []
    engine.between_pages = [lambda: seen.append(fake.counts[EVENTS])]
    fake.reset_counts()
    engine.poll()
    assert [len(asks) for asks in engine.asks[-2:]] == [10, 1]
    assert all(bodies(engine, t) == [f"note on {t}"] for t in ids)
    assert fake.counts[EVENTS] == seen[0]  # none for the second page


def test_the_window_ends_with_its_poll(fake, clock):
    ids = make_tickets(fake, clock, 3)
    zd = connector(fake, clock)
    engine = Engine(zd)
    engine.poll()
    assert zd._window is None
    fake.add_comment(ids[0], "in the second the last poll read to", public=False, author_id=fake.api_user["id"])
    engine.read.clear()
    engine.poll()
    assert bodies(engine, ids[0]) == ["in the second the last poll read to"]


@pytest.mark.parametrize("most, chars", [(5, 10**9), (10**9, 40)], ids=["comments", "text"])
def test_comments_let_go_for_memory_are_read_again_only_where_not_read_yet(fake, clock, monkeypatch, most, chars):
    monkeypatch.setattr(zendesk, "EVENTS_HELD_MAX", most)
    monkeypatch.setattr(zendesk, "EVENTS_HELD_CHARS", chars)  # "Body 12" and such: about five comments
    ids = make_tickets(fake, clock, 40)
    clock.advance(120)
    note_each(fake, clock, ids[30:], "early note on")  # the last page's tickets change later
    clock.advance(120)
    # Without the events mark the next window reads back over the comments read already,
    # which are the ones it lets go (with a mark it starts after them).
    engine = Engine(connector(fake, clock), keep_mark=False)
    fake.reset_counts()
    engine.poll()
    assert all(bodies(engine, t) == [f"Body {i}"] for i, t in enumerate(ids[:30]))
    assert all(bodies(engine, t) == [f"Body {i + 30}", f"early note on {t}"] for i, t in enumerate(ids[30:]))

    note_each(fake, clock, ids, "note on")
    clock.advance(120)
    engine.read.clear()
    fake.reset_counts()
    engine.poll()
    # The window kept about five comments for later pages; the ones let go were read already
    # (each ask's ``after`` shows it), so no ticket is read on its own.
    assert all(bodies(engine, t) == [f"note on {t}"] for t in ids)
    assert fake.counts[COMMENTS] == 0


def test_a_quiet_ticket_is_read_on_its_own_and_the_window_starts_with_the_recent_ones(fake, clock):
    quiet = fake.create_ticket("Old", "opened long ago", requester_id=fake.customer["id"])["id"]
    clock.advance(120)
    engine = Engine(connector(fake, clock))
    engine.poll()
    clock.advance(10 * 86400)  # ten days pass, the injected clock moved on
    recent = make_tickets(fake, clock, 5)
    clock.advance(120)
    engine.poll()
    note_each(fake, clock, [quiet, *recent], "note on")  # syncd writes to the old ticket too
    clock.advance(120)
    engine.read.clear()
    fake.reset_counts()
    zd = engine.zd
    starts: list[int] = []
    zd.http.session.hooks["response"].append(
        lambda r, *a, **k: (
            starts.append(int(r.request.url.split("start_time=")[1].split("&")[0]))
            if EVENTS_PATH in r.request.url
            else None
        )
    )
    engine.poll()
    assert bodies(engine, quiet) == [f"note on {quiet}"]
    assert all(bodies(engine, t) == [f"note on {t}"] for t in recent)
    assert fake.counts[COMMENTS] == 1  # the quiet ticket: its last stored change is ten days old
    assert min(starts) >= int((clock() - timedelta(days=2)).timestamp())  # not ten days of events


def test_a_quiet_ticket_the_window_already_reaches_is_answered_from_it(fake, clock):
    first = make_tickets(fake, clock, 10)
    clock.advance(36 * 3600)  # a day and a half later, ten more
    later = make_tickets(fake, clock, 10)
    clock.advance(36 * 3600)  # and as long again: a reply on the last of the first ten
    fake.add_comment(first[9], "a reply", author_id=fake.customer["id"])
    clock.advance(120)
    engine = Engine(connector(fake, clock))
    fake.reset_counts()
    engine.poll()  # a first sync: the first page's window starts at the first tickets' creation
    assert [len(asks) for asks in engine.asks] == [10, 10]
    assert bodies(engine, first[9]) == ["Body 9", "a reply"]
    assert all(bodies(engine, t) == [f"Body {i}"] for i, t in enumerate(first[:9]))
    assert all(bodies(engine, t) == [f"Body {i}"] for i, t in enumerate(later))
    # The reply's ticket was made three days before its page's latest change, but the
    # poll's window already reached back to it: no read of its own.
    assert fake.counts[COMMENTS] == 0


def test_a_later_page_of_older_tickets_reads_the_stream_again_from_their_start(fake, clock):
    older = make_tickets(fake, clock, 10)
    newer = make_tickets(fake, clock, 10)
    for tid in older:  # the older tickets change last: the feed lists them on the second page
        clock.advance(1)
        fake.add_comment(tid, f"reply on {tid}", author_id=fake.customer["id"])
    clock.advance(120)
    engine = Engine(connector(fake, clock))
    fake.reset_counts()
    engine.poll()
    assert [sorted(a.ticket_id for a in asks) for asks in engine.asks] == [
        sorted(str(t) for t in newer),
        sorted(str(t) for t in older),
    ]
    # The second page's tickets were made before the window's start: more of them than an
    # events page is worth in reads, so the window starts again from the earliest.
    assert all(bodies(engine, t) == [f"Body {i}", f"reply on {t}"] for i, t in enumerate(older))
    assert all(bodies(engine, t) == [f"Body {i}"] for i, t in enumerate(newer))
    assert fake.counts[COMMENTS] == 0
