"""Linear's comment feed (the conversation mirror), driven against the fake over HTTP.

After the issue feed, ``SyncdComments`` reads the comments made or edited
since its window (an edit leaves the issue's ``updatedAt`` alone, so the
issue feed alone would miss it): one more request per idle cycle.
"""

from __future__ import annotations

import pytest

from connectors.linear.connector import LinearConfig, LinearConnector
from connectors.linear.fake import SANDBOX_API_KEY, LinearFake
from syncd.sandbox.server import Sandbox


@pytest.fixture
def fake(clock):
    lin = LinearFake(clock=clock)
    lin.add_team("ENG", "Engineering")
    lin.add_team("APP", "Apps")
    lin.ada = lin.add_user("Ada Novak", "ada@product.example")
    with Sandbox([lin]):
        yield lin


def connector(fake: LinearFake, clock) -> LinearConnector:
    config = LinearConfig(kind="linear", url=fake.base_url, api_key=SANDBOX_API_KEY, teams=["ENG"], max_attempts=2)
    return LinearConnector("linear", config, sleep=lambda s: None, clock=clock)


def drain(conn: LinearConnector, cursor: str | None):
    pages = list(conn.poll(cursor))
    return pages[-1].cursor, [r for p in pages for r in p.remarks]


def test_comments_new_and_edited_are_read_once_and_idle_costs_one_request(fake, clock):
    issue = fake.create_issue("ENG", "Export fails")
    other = fake.create_issue("APP", "Not followed")
    conn = connector(fake, clock)
    conn.read_comments = True
    cursor, remarks = drain(conn, None)
    assert remarks == []  # the first read starts now: nothing earlier is replayed
    clock.advance(10)
    comment = fake.add_comment(issue, "Fixed in 4.2", user=fake.ada)
    fake.add_comment(other, "another team's", user=fake.ada)
    clock.advance(10)
    cursor, remarks = drain(conn, cursor)
    assert [(r.id, r.issue_key, r.author_name, r.bot, r.body) for r in remarks] == [
        (comment["id"], fake.issue(issue["id"])["identifier"], "Ada Novak", False, "Fixed in 4.2")
    ]
    assert remarks[0].issue_id == issue["id"]
    clock.advance(10)
    fake.edit_comment(comment["id"], "Fixed in 4.3")
    clock.advance(10)
    cursor, remarks = drain(conn, cursor)
    assert [r.body for r in remarks] == ["Fixed in 4.3"]  # the issue did not move: the comment feed saw it
    clock.advance(10)
    fake.reset_counts()
    cursor, remarks = drain(conn, cursor)
    assert remarks == []
    assert fake.counts == {"POST /graphql SyncdIssues": 1, "POST /graphql SyncdComments": 1}


def test_off_the_feed_costs_what_it_did(fake, clock):
    fake.create_issue("ENG", "Export fails")
    conn = connector(fake, clock)
    cursor, _ = drain(conn, None)
    fake.reset_counts()
    drain(conn, cursor)
    assert fake.counts == {"POST /graphql SyncdIssues": 1}
