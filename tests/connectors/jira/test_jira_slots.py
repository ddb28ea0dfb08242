"""Jira's first demand comment per issue without a look (issue 13), against the fake over HTTP.

With a kept slot (the handoff's demand comment) the feed's search also asks for each issue's
comments: an issue whose every comment is listed and none is syncd's is "quiet", remembered in
the process and in the cursor. A slot write to a quiet issue that the store holds no earlier
write of is posted with no look; anything else looks as before."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from connectors.base import SlotRecord
from connectors.jira.connector import JiraConfig, JiraConnector
from connectors.jira.fake import JiraFake
from tests.connectors.jira.test_jira_fake import Clock

KEY = "0123456789abcdef0123"
LOOK = "GET /rest/api/3/issue/{issueIdOrKey}/comment"
POST = "POST /rest/api/3/issue/{issueIdOrKey}/comment"


def connect(fake: JiraFake, clock: Clock, kept_slots: tuple[str, ...] = ("demand",)) -> JiraConnector:
    config = JiraConfig(
        url=fake.base_url, email=fake.email, api_token=SecretStr(fake.api_token), projects=["ENG"], backfill_days=1
    )
    return JiraConnector("jira", config, sleep=clock.sleep, clock=clock, kept_slots=kept_slots)


def cursor_after(conn: JiraConnector, cursor: str | None) -> str:
    return [p.cursor for p in conn.poll(cursor)][-1]


def demand_comments(issue) -> list[str]:
    return [c["id"] for c in issue.comments if any(p["value"].get("slot") == "demand" for p in c["properties"])]


def test_a_quiet_issue_gets_its_first_demand_comment_with_no_look_when_the_store_vouches_too(fake, clock):
    bare = fake.create_issue("ENG", "Export fails")
    talked = fake.create_issue("ENG", "Import fails")
    fake.comment(talked, "a person's comment", author="Ada Novak")
    ours = fake.create_issue("ENG", "Sync fails")
    connect(fake, clock).upsert_comment(ours.id, "1 ticket", KEY, "demand")  # syncd's, from another process
    spare = fake.create_issue("ENG", "Login fails")
    clock.advance(minutes=1)
    conn = connect(fake, clock)
    cursor = cursor_after(conn, None)
    assert json.loads(cursor)["quiet"] == sorted([bare.id, talked.id, spare.id], key=int)

    fake.reset_counts()
    conn.upsert_comment(bare.id, "2 tickets", KEY, "demand", known=SlotRecord(written=False))
    conn.upsert_comment(talked.id, "2 tickets", KEY, "demand", known=SlotRecord(written=False))
    assert fake.counts == {POST: 2}  # a person's comment is not syncd's: still no look
    # The feed saw syncd's comment there: looked for, found, edited in place.
    conn.upsert_comment(ours.id, "3 tickets", KEY, "demand", known=SlotRecord(written=False))
    assert fake.counts[LOOK] == 1 and len(demand_comments(ours)) == 1
    # The store says a write of the slot was sent (a crash before its answer was kept): a look.
    fake.reset_counts()
    conn.upsert_comment(spare.id, "1 ticket", KEY, "demand", known=SlotRecord(written=True))
    assert fake.counts.get(LOOK) == 1
    # No store word at all (a write outside delivery): a look, as before.
    fresh = connect(fake, clock)
    cursor_after(fresh, cursor)
    fake.reset_counts()
    other = fake.create_issue("ENG", "Search fails")
    fresh.upsert_comment(other.id, "1 ticket", KEY, "demand")
    assert fake.counts.get(LOOK) == 1
    assert [len(demand_comments(i)) for i in (bare, talked, ours, spare, other)] == [1, 1, 1, 1, 1]


def test_a_later_process_knows_the_quiet_issues_from_the_cursor_and_a_comment_since_undoes_it(fake, clock):
    bare = fake.create_issue("ENG", "Export fails")
    talked = fake.create_issue("ENG", "Import fails")
    clock.advance(minutes=1)
    cursor = cursor_after(connect(fake, clock), None)
    for _ in range(2):  # later polls that no longer read the two issues (past the settled window)
        clock.advance(minutes=10)
        cursor = cursor_after(connect(fake, clock), cursor)
    assert json.loads(cursor)["quiet"] == sorted([bare.id, talked.id], key=int)

    fake.comment(talked, "syncd's, made by hand", author=None)  # syncd's own account: it may hold the slot
    clock.advance(minutes=1)
    conn = connect(fake, clock)
    fake.reset_counts()
    pages = list(conn.poll(cursor))
    assert [r.key for p in pages for r in p.records] == [talked.key]  # changed: read again; bare: not
    assert fake.counts["POST /rest/api/3/search/jql"] == 1
    conn.upsert_comment(bare.id, "2 tickets", KEY, "demand", known=SlotRecord(written=False))
    assert LOOK not in fake.counts
    assert "GET /rest/api/3/myself" not in fake.counts  # the time zone came from the cursor: not asked
    conn.upsert_comment(talked.id, "2 tickets", KEY, "demand", known=SlotRecord(written=False))
    assert fake.counts.get(LOOK) == 1


def test_without_kept_slots_the_search_and_the_cursor_are_as_before(fake, clock):
    fake.create_issue("ENG", "Export fails")
    conn = connect(fake, clock, kept_slots=())
    searches: list[dict] = []
    fake.listeners.append(lambda endpoint, request, response: searches.append(json.loads(request.body or b"{}")))
    cursor = cursor_after(conn, None)
    assert "quiet" not in json.loads(cursor)
    assert "comment" not in searches[-1]["fields"]


@pytest.mark.parametrize("damaged", [5, "10001", [None, 1, "x"], {"id": "10001"}])
def test_a_damaged_quiet_list_in_the_cursor_is_read_as_none(fake, clock, damaged):
    """A cursor whose quiet list is damaged vouches for no issue: its first demand comment
    looks first, and the poll goes on."""
    bare = fake.create_issue("ENG", "Export fails")
    clock.advance(minutes=1)
    cursor = cursor_after(connect(fake, clock), None)
    for _ in range(2):  # past the settled window: the search no longer reads the issue
        clock.advance(minutes=10)
        cursor = cursor_after(connect(fake, clock), cursor)
    state = json.loads(cursor)
    state["quiet"] = damaged
    conn = connect(fake, clock)
    fake.reset_counts()
    list(conn.poll(json.dumps(state)))
    conn.upsert_comment(bare.id, "2 tickets", KEY, "demand", known=SlotRecord(written=False))
    assert fake.counts.get(LOOK) == 1
