"""Jira's comments for the conversation mirror: read in the search the feed makes already.

With a rule on, the search asks for ``fields=comment`` too: no extra request.
Restricted comments (``visibility``) are marked private, an app's a bot's,
syncd's own known by its account (their marker is a property the search does
not return).
"""

from __future__ import annotations

from tests.connectors.jira.test_jira_fake import connect


def remarks_of(conn, cursor):
    pages = list(conn.poll(cursor))
    return [r for p in pages for r in p.remarks], pages[-1].cursor


def test_comments_ride_in_the_search_and_are_told_apart(fake, clock):
    issue = fake.create_issue("ENG", "Export fails")
    conn = connect(fake, clock)
    conn.read_comments = True
    _, cursor = remarks_of(conn, None)
    clock.advance(minutes=2)
    fake.comment(issue, "Fixed in 4.2", author="Ada Novak")
    fake.comment(
        issue,
        "Internal: the customer's DB is huge",
        author="Ada Novak",
        visibility={"type": "role", "value": "Developers"},
    )
    bot = fake.add_user("CI Bot")
    bot.account_type = "app"
    fake.comment(issue, "build passed", author="CI Bot")
    conn.add_comment(issue.id, "From support: only on Safari", "0123456789abcdef0123")
    clock.advance(minutes=2)
    fake.reset_counts()
    remarks, cursor = remarks_of(conn, cursor)
    assert fake.total_requests() == 1  # the search alone: the comments came with it
    by_body = {r.body: r for r in remarks}
    fixed = by_body["Fixed in 4.2"]
    assert fixed.issue_key == issue.key and fixed.issue_id == issue.id and fixed.author_name == "Ada Novak"
    assert not fixed.private and not fixed.bot and f"focusedCommentId={fixed.id}" in fixed.url
    assert by_body["Internal: the customer's DB is huge"].private
    assert by_body["build passed"].bot
    own = by_body["From support: only on Safari"]
    assert own.author_id in conn.own_accounts()

    # An edit moves the issue: the search brings the comment again with its new text.
    clock.advance(minutes=2)
    fake.edit_comment_as_person(issue, fixed.id, "Fixed in 4.3")
    clock.advance(minutes=2)
    remarks, cursor = remarks_of(conn, cursor)
    assert "Fixed in 4.3" in [r.body for r in remarks if r.id == fixed.id]


def test_a_complete_comment_list_is_told_so_that_deletions_can_be_seen(fake, clock):
    issue = fake.create_issue("ENG", "Export fails")
    conn = connect(fake, clock)
    conn.read_comments = True
    _, cursor = remarks_of(conn, None)
    clock.advance(minutes=2)
    kept = fake.comment(issue, "kept", author="Ada Novak")
    fake.comment(issue, "another", author="Ada Novak")
    clock.advance(minutes=2)
    pages = list(conn.poll(cursor))
    sets = {k: v for p in pages for k, v in p.comment_sets.items()}
    assert sets == {issue.id: frozenset({kept["id"], str(int(kept["id"]) + 1)})}


def test_off_the_search_asks_for_no_comments(fake, clock):
    fake.create_issue("ENG", "Export fails")
    conn = connect(fake, clock)
    pages = list(conn.poll(None))
    assert all(p.remarks == [] for p in pages)
