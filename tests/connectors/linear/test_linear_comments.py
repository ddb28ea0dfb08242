"""Linear's comment feed (the conversation mirror), driven against the fake over HTTP.

``SyncdFeed`` reads the issue feed's first page and the comments made or
edited since the comment window (an edit leaves the issue's ``updatedAt``
alone, so the issue feed alone would miss it) in one document: one request
per idle cycle. Whichever part has more pages is followed alone.
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


def connector(fake: LinearFake, clock, **settings) -> LinearConnector:
    config = LinearConfig(
        kind="linear", url=fake.base_url, api_key=SANDBOX_API_KEY, teams=["ENG"], max_attempts=2, **settings
    )
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
    assert fake.counts == {"POST /graphql SyncdFeed": 1}


def test_a_new_comment_and_an_issue_change_come_in_the_one_request(fake, clock):
    issue = fake.create_issue("ENG", "Export fails")
    conn = connector(fake, clock)
    conn.read_comments = True
    cursor, _ = drain(conn, None)
    clock.advance(10)
    fake.assign(issue, fake.ada)
    comment = fake.add_comment(issue, "Only on Safari", user=fake.ada)
    clock.advance(10)
    fake.reset_counts()
    pages = list(conn.poll(cursor))
    assert fake.counts == {"POST /graphql SyncdFeed": 1}
    assert len(pages) == 1 and pages[0].done
    assert [(r.ref.id, r.assignee) for r in pages[0].records] == [(issue["id"], "Ada Novak")]
    assert [r.id for r in pages[0].remarks] == [comment["id"]]


def test_paging_follows_each_feed_alone_and_reads_everything(fake, clock):
    issues = [fake.create_issue("ENG", f"Issue {n}") for n in range(5)]
    conn = connector(fake, clock, page_size=2)
    conn.read_comments = True
    cursor, _ = drain(conn, None)
    clock.advance(10)
    # five changed issues (three pages) and three new comments (two pages)
    for n, issue in enumerate(issues):
        fake.assign(issue, fake.ada)
    comments = [fake.add_comment(issues[n], f"note {n}", user=fake.ada) for n in range(3)]
    clock.advance(10)
    fake.reset_counts()
    pages = list(conn.poll(cursor))
    assert fake.counts == {
        "POST /graphql SyncdFeed": 1,
        "POST /graphql SyncdIssues": 2,
        "POST /graphql SyncdComments": 1,
    }
    assert sorted(r.ref.id for p in pages for r in p.records) == sorted(i["id"] for i in issues)
    assert sorted(r.id for p in pages for r in p.remarks) == sorted(c["id"] for c in comments)
    assert [p.done for p in pages] == [False, False, False, True]
    # resuming from any page's cursor leaves nothing out
    fake.reset_counts()
    cursor_mid = pages[1].cursor
    rest = list(conn.poll(cursor_mid))
    assert {r.ref.id for p in rest for r in p.records} >= {r.ref.id for p in pages[2:] for r in p.records}
    assert {r.id for p in rest for r in p.remarks} >= {r.id for p in pages[3:] for r in p.remarks}
    clock.advance(10)
    fake.reset_counts()
    drain(conn, pages[-1].cursor)
    assert fake.counts == {"POST /graphql SyncdFeed": 1}


def test_off_the_feed_costs_what_it_did(fake, clock):
    fake.create_issue("ENG", "Export fails")
    conn = connector(fake, clock)
    cursor, _ = drain(conn, None)
    fake.reset_counts()
    drain(conn, cursor)
    assert fake.counts == {"POST /graphql SyncdIssues": 1}


def test_comments_present_in_one_request_a_deleted_one_is_gone(fake, clock):
    issue = fake.create_issue("ENG", "Export fails")
    kept = fake.add_comment(issue, "Fixed in 4.2", user=fake.ada)
    deleted = fake.add_comment(issue, "Wrong issue, sorry", user=fake.ada)
    conn = connector(fake, clock)
    ids = {kept["id"]: issue["id"], deleted["id"]: issue["id"]}
    fake.reset_counts()
    first = conn.comments_present(ids, {})
    assert (first.present, first.gone, first.requests) == (set(ids), set(), 1)
    fake.delete_comment(deleted["id"])
    second = conn.comments_present(ids, {})
    assert (second.present, second.gone) == ({kept["id"]}, {deleted["id"]})
    assert fake.counts == {"POST /graphql SyncdCommentsPresent": 2}


def test_comments_present_batches_by_a_hundred(fake, clock):
    issue = fake.create_issue("ENG", "Export fails")
    ids = {fake.add_comment(issue, f"note {n}", user=fake.ada)["id"]: issue["id"] for n in range(120)}
    conn = connector(fake, clock)
    fake.reset_counts()
    answer = conn.comments_present(ids, {})
    assert answer.present == set(ids) and answer.requests == 2
    assert fake.counts == {"POST /graphql SyncdCommentsPresent": 2}
