"""The issue feed's overlap against the Linear fake over real HTTP (issue 13): the poll after a
change leaves out, pair by pair, what the poll before it delivered, and never misses a change:
another issue changed at the same instant as the cursor, or the same issue changed again."""

from __future__ import annotations

import json

import pytest

from connectors.linear.connector import LinearConfig, LinearConnector
from connectors.linear.fake import SANDBOX_API_KEY, LinearFake
from syncd.sandbox.server import Sandbox


@pytest.fixture
def fake(clock):
    lin = LinearFake(clock=clock)
    lin.eng = lin.add_team("ENG", "Engineering")
    with Sandbox([lin]):
        yield lin


def connector(fake: LinearFake, clock) -> LinearConnector:
    config = LinearConfig(kind="linear", url=fake.base_url, api_key=SANDBOX_API_KEY, teams=["ENG"])
    return LinearConnector("linear", config, sleep=lambda s: None, clock=clock)


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
