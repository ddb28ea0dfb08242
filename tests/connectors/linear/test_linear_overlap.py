"""The issue feed's overlap against the Linear fake over real HTTP (issue 13): the poll after a
change leaves out, pair by pair, what the poll before it delivered, and never misses a change:
another issue changed at the same instant as the cursor, or the same issue changed again."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from connectors.base import BatchedWrite
from connectors.linear.connector import LinearConfig, LinearConnector
from connectors.linear.fake import SANDBOX_API_KEY, LinearFake
from syncd.sandbox.server import Sandbox
from syncd.writes import AttachTicket


@pytest.fixture
def fake(clock):
    lin = LinearFake(clock=clock)
    lin.eng = lin.add_team("ENG", "Engineering")
    with Sandbox([lin]):
        yield lin


def connector(fake: LinearFake, clock, page_size: int = 50, *, lag: float = 0.001) -> LinearConnector:
    """syncd reads its clock ``lag`` seconds after Linear stamps (a clock that moves; 0: frozen)."""
    config = LinearConfig(kind="linear", url=fake.base_url, api_key=SANDBOX_API_KEY, teams=["ENG"], page_size=page_size)
    return LinearConnector("linear", config, sleep=lambda s: None, clock=lambda: clock() + timedelta(seconds=lag))


def poll(conn: LinearConnector, cursor: str | None) -> tuple[list[str], str, int]:
    """(the identifiers delivered, the cursor after, the feed requests sent)."""
    before = conn.http.stats.by_endpoint.get("POST /graphql SyncdIssues", 0)
    pages = list(conn.poll(cursor))
    sent = conn.http.stats.by_endpoint.get("POST /graphql SyncdIssues", 0) - before
    return [i.key for p in pages for i in p.records], pages[-1].cursor, sent


def test_a_change_at_the_cursors_instant_is_read_and_nothing_delivered_is_read_twice(fake, clock):
    conn = connector(fake, clock)
    first = fake.create_issue("ENG", "Export fails")
    got, cursor, _ = poll(conn, None)
    assert got == [fake.issue(first)["identifier"]]
    # Within the overlap: the next poll's window reaches back before the change it delivered.
    assert json.loads(cursor)["seen"] == [[first["id"], first["updatedAt"]]]

    # Another issue changes at the very instant of the delivered one (the high-water mark).
    second = fake.create_issue("ENG", "Import fails")
    assert second["updatedAt"] == first["updatedAt"]
    clock.advance(1)
    got, cursor, sent = poll(conn, cursor)
    assert got == [fake.issue(second)["identifier"]] and sent == 1  # the first one is not read again

    clock.advance(1)
    got, cursor, sent = poll(conn, cursor)
    assert got == [] and sent == 1  # idle: one request, nothing re-read

    fake.move_to_state(first, "In Progress")  # the same issue changes again
    clock.advance(1)
    got, cursor, sent = poll(conn, cursor)
    assert got == [fake.issue(first)["identifier"]] and sent == 1

    clock.advance(60)  # quiet for longer than the overlap: the window closes on the last change
    got, cursor, sent = poll(conn, cursor)
    assert got == [] and sent == 1
    assert "seen" not in json.loads(cursor)


def attach(issue: dict, n: int) -> BatchedWrite:
    ticket = f"https://acme.zendesk.com/agent/tickets/{n}"
    return BatchedWrite(issue["id"], f"{n:020d}", AttachTicket(ticket, f"Ticket #{n}", ""))


def test_the_next_poll_delivers_the_echo_of_syncds_writes_and_reads_only_what_changed_since(fake, clock):
    """syncd's batched writes move their issues' updatedAt; the last write to each issue reads the
    issue back, and the next poll delivers that read instead of reading the issue again. A change
    a person made before the write is in it; one made after it, or to another issue at the
    write's very instant, is read by the feed."""
    conn = connector(fake, clock, page_size=2)  # four issues read again would take two pages
    moved, quiet, later = (fake.create_issue("ENG", t) for t in ("Export fails", "Import fails", "Sync fails"))
    _, cursor, _ = poll(conn, None)
    clock.advance(60)
    fake.move_to_state(moved, "In Progress")  # after the poll, before syncd's write: hidden by its bump
    clock.advance(1)
    results = conn.send_batch([attach(moved, 1), attach(quiet, 2), attach(moved, 3), attach(later, 4)])
    assert all(r.id for r in results)
    other = fake.create_issue("ENG", "Login fails")  # another issue, at the very instant of syncd's writes
    # The same issue changed a millisecond after syncd's write. (Changed in the same millisecond,
    # after the write's answer was read, it would not be told apart: Linear's updatedAt is the only
    # version an issue has, as with any (id, updated) de-duplication; see docs/benchmarks.md.)
    clock.advance(0.001)
    fake.move_to_state(later, "In Progress")
    clock.advance(1)
    before = conn.http.stats.by_endpoint.get("POST /graphql SyncdIssues", 0)
    pages = list(conn.poll(cursor))
    assert conn.http.stats.by_endpoint["POST /graphql SyncdIssues"] - before == 1
    got = {i.key: i for p in pages for i in p.records}
    names = {name: fake.issue(i)["identifier"] for name, i in (("moved", moved), ("quiet", quiet), ("other", other))}
    assert set(got) == {names["moved"], names["quiet"], names["other"], fake.issue(later)["identifier"]}
    assert got[names["moved"]].state.value == "started"  # the change hidden by the write's bump
    assert len(got[names["moved"]].attachments) == 2  # as after both writes to it
    assert got[fake.issue(later)["identifier"]].state.value == "started"
    clock.advance(1)
    got, cursor, sent = poll(conn, pages[-1].cursor)
    assert got == [] and sent == 1  # idle: nothing re-read


def test_the_echo_is_not_delivered_when_the_feed_read_the_issue_again(fake, clock):
    conn = connector(fake, clock)
    issue = fake.create_issue("ENG", "Export fails")
    _, cursor, _ = poll(conn, None)
    clock.advance(60)
    conn.send_batch([attach(issue, 1)])
    clock.advance(1)
    fake.move_to_state(issue, "Done")  # after the write: its updatedAt is no longer the echo's
    clock.advance(1)
    got, _, sent = poll(conn, cursor)
    assert got == [fake.issue(issue)["identifier"]] and sent == 1  # once, as the feed read it


def test_the_echo_rides_in_the_first_page_whose_cursor_leaves_it_out(fake, clock):
    """A poll stopped after its first page (the cursor of that page stored) has delivered the echo
    already: the poll that resumes from that cursor leaves the written issue out and loses nothing."""
    conn = connector(fake, clock, page_size=1)
    written, moved = fake.create_issue("ENG", "Export fails"), fake.create_issue("ENG", "Import fails")
    list(conn.poll(None))
    cursor = json.dumps({"since": fake.issue(moved)["updatedAt"]})
    clock.advance(60)
    fake.move_to_state(written, "In Progress")  # hidden by syncd's write below
    clock.advance(1)
    conn.send_batch([attach(written, 1)])
    clock.advance(1)
    fake.move_to_state(moved, "In Progress")
    other = fake.create_issue("ENG", "Sync fails")
    clock.advance(1)
    feed = conn.poll(cursor)
    first = next(feed)
    del feed  # stopped: only the first page (and its cursor) was taken
    assert not first.done
    assert [i.key for i in first.records][0] == fake.issue(written)["identifier"]
    assert first.records[0].state.value == "started"
    resumed = [i.key for p in connector(fake, clock, page_size=1).poll(first.cursor) for i in p.records]
    assert fake.issue(written)["identifier"] not in resumed
    assert {i.key for i in first.records} | set(resumed) == {
        fake.issue(x)["identifier"] for x in (written, moved, other)
    }


def test_an_echo_replaces_the_pair_its_issue_had_in_the_cursor(fake, clock, monkeypatch):
    """Issues written right after the poll that read them (a first sync): the cursor holds their
    pairs (inside the overlap) and the writes' echoes are new pairs of the same issues; those
    replace the old ones, so up to SEEN_MAX written issues are still left out of the next poll."""
    import connectors.linear.connector as linear

    monkeypatch.setattr(linear, "SEEN_MAX", 3)
    conn = connector(fake, clock, page_size=2)
    issues = [fake.create_issue("ENG", f"Defect {n}") for n in range(3)]
    _, cursor, _ = poll(conn, None)
    assert len(json.loads(cursor)["seen"]) == 3  # read within the overlap
    clock.advance(1)
    conn.send_batch([attach(issue, n) for n, issue in enumerate(issues)])
    clock.advance(1)
    got, _, sent = poll(conn, cursor)
    assert sorted(got) == sorted(fake.issue(i)["identifier"] for i in issues) and sent == 1


def test_with_a_clock_that_does_not_move_nothing_read_at_its_instant_is_left_out(fake, clock):
    """A change stamped at the very instant syncd read the issue (or wrote it) could be followed by
    another change of the same issue at that instant: such a pair is read again, never left out."""
    conn = connector(fake, clock, lag=0)
    issue = fake.create_issue("ENG", "Export fails")
    _, cursor, _ = poll(conn, None)
    assert "seen" not in json.loads(cursor)  # read at the instant it was stamped
    fake.move_to_state(issue, "In Progress")  # the same issue, the same instant
    got, cursor, _ = poll(conn, cursor)
    assert got == [fake.issue(issue)["identifier"]]
    clock.advance(60)
    conn.send_batch([attach(issue, 1)])
    fake.move_to_state(issue, "Done")  # at the instant of syncd's write, after it
    pages = list(conn.poll(cursor))
    [read] = [i for p in pages for i in p.records]
    assert read.state.value == "completed"
