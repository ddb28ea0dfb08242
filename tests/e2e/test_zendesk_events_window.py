"""Zendesk's ticket events export through the engine and the sandbox: the cycle after
syncd wrote to several pages of tickets reads the events stream forward once, one
window for the whole poll, from where the last poll read the stream to (the mark kept
with the cursor), not again from the tickets' stored changes for every page of tickets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import connectors.zendesk.connector as zendesk
from syncd.sandbox.harness import Playground
from syncd.sandbox.runner import build_sandbox

pytestmark = pytest.mark.e2e

EVENTS = "GET /api/v2/incremental/ticket_events"
COMMENTS = "GET /api/v2/tickets/{id}/comments"
FEED = "GET /api/v2/incremental/tickets/cursor"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def pg(tmp_path, clock, monkeypatch):
    # Scaled down a hundredfold from Zendesk's 1,000 tickets and 1,000 events a page, an
    # events page is worth less than one read, not ten: the window reads on while a ticket is left.
    monkeypatch.setattr(zendesk, "EVENTS_PAGE_WORTH", 0)
    sandbox = build_sandbox(clock=clock, trackers=("linear",), helpdesk="zendesk")
    with Playground(tmp_path / "work", sandbox=sandbox, trackers=("linear",), helpdesk="zendesk") as playground:
        playground.env["SYNCD_CONNECTORS__ZENDESK__PAGE_SIZE"] = "10"  # pages of ten tickets
        playground.zendesk.events_page_size = 50  # events: more than syncd writes in one second here
        yield playground


def test_the_cycle_after_writes_to_several_pages_reads_the_events_once(pg, clock):
    app = pg.app(clock=clock)
    try:
        clock.advance(120)
        assert app.engine.cycle().ok  # the seeded story's first sync
        clock.advance(3600)
        key = next(iter(pg.seed.identifiers.values()))
        customer = next(u for u in pg.zendesk.users.values() if u["role"] == "end-user")
        made = []
        for i in range(40):  # four pages of new tickets, each naming the issue
            clock.advance(1)
            made.append(pg.zendesk.create_ticket(f"Ticket {i}", f"Broken, see {key}", requester_id=customer["id"]))
        clock.advance(120)
        assert app.engine.cycle().ok  # links them and writes a note to each
        written = [t["id"] for t in made if any("[syncd:" in c["body"] for c in pg.zendesk.ticket_comments(t["id"]))]
        assert len(written) == 40
        clock.advance(120)
        pg.sandbox.reset_counts()
        report = app.engine.cycle()  # the echoes of those writes
        assert report.ok
        counts = pg.sandbox.counts()["zendesk"]
        assert counts[FEED] >= 4  # at least four pages of written tickets
        # The last poll read every ticket's comments through the end of its window (the mark
        # in the stored cursor), so the stream is read from there: syncd's notes, all in one
        # second, one events page for the four pages of tickets. Read again from each page's
        # earliest stored change, as before, it took seven.
        assert counts[EVENTS] == 1, counts
        assert counts.get(COMMENTS, 0) == 0, counts
    finally:
        app.close()
