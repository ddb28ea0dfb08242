"""The GitHub fake over real HTTP on 127.0.0.1, and the connector driven against it."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import requests

from connectors.github.connector import GitHubConfig, GitHubConnector, PublicRepositoryRefused
from connectors.github.fake import GitHubFake
from syncd.errors import Gone
from syncd.records import StateCategory
from syncd.sandbox.server import Sandbox
from tests.connectors.conftest import Clock

TOKEN = "sandbox-github-token"


@pytest.fixture
def fake():
    service = GitHubFake()
    service.create_repo("acme/web", private=True)
    service.create_repo("acme/sdk")
    with Sandbox([service]):
        yield service


def get(fake, path, token=TOKEN, **kwargs):
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(fake.base_url + path, headers=headers, timeout=5, **kwargs)


def send(fake, method, path, body, token=TOKEN):
    return requests.request(
        method,
        fake.base_url + path,
        json=body,
        timeout=5,
        headers={"Authorization": f"Bearer {token}"},
        allow_redirects=False,
    )


def connector(fake, repos=("acme/web", "acme/sdk"), **extra) -> GitHubConnector:
    config = GitHubConfig(
        kind="github", url=fake.base_url, token=TOKEN, repositories=list(repos), mutation_interval=0, **extra
    )
    return GitHubConnector("gh", config, sleep=lambda s: None)


def test_bearer_auth_is_required(fake):
    assert get(fake, "/user", token=None).status_code == 401
    assert get(fake, "/user", token="wrong").json()["message"] == "Bad credentials"
    me = get(fake, "/user")
    assert me.status_code == 200 and me.json()["login"] == "syncd-bot"


def test_repository_visibility_can_change(fake):
    assert get(fake, "/repos/acme/web").json()["private"] is True
    fake.set_visibility("acme/web", "public")
    body = get(fake, "/repos/acme/web").json()
    assert (body["private"], body["visibility"]) == (False, "public")


def test_issue_list_pages_with_a_real_link_header_and_filters(fake):
    for n in range(5):
        fake.create_issue("acme/web", f"bug {n}")
    fake.close(fake.create_issue("acme/web", "done"), "not_planned")
    first = get(
        fake, "/repos/acme/web/issues", params={"state": "all", "per_page": 2, "sort": "created", "direction": "asc"}
    )
    assert [i["number"] for i in first.json()] == [1, 2]
    repo_id = fake.repos["acme/web"].id
    assert f"/repositories/{repo_id}/issues?" in first.links["next"]["url"]
    assert "page=3" in first.links["last"]["url"]
    numbers = [i["number"] for i in first.json()]
    url = first.links["next"]["url"]
    while url:
        page = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        numbers += [i["number"] for i in page.json()]
        url = page.links.get("next", {}).get("url")
    assert numbers == [1, 2, 3, 4, 5, 6]
    open_only = get(fake, "/repos/acme/web/issues").json()  # default: open, newest first
    assert [i["number"] for i in open_only] == [5, 4, 3, 2, 1]
    closed = get(fake, "/repos/acme/web/issues", params={"state": "closed"}).json()
    assert [(i["state"], i["state_reason"]) for i in closed] == [("closed", "not_planned")]
    future = get(fake, "/repos/acme/web/issues", params={"since": "2999-01-01T00:00:00Z"}).json()
    assert future == []


def test_issue_json_has_the_real_shape(fake):
    issue = fake.create_issue("acme/web", "crash", "steps", assignee="dev", labels=("bug",))
    pr = fake.create_issue("acme/web", "fix", pull_request=True)
    body = get(fake, f"/repos/acme/web/issues/{issue.number}").json()
    for key in (
        "id",
        "node_id",
        "number",
        "html_url",
        "url",
        "repository_url",
        "state",
        "state_reason",
        "title",
        "body",
        "user",
        "assignee",
        "assignees",
        "labels",
        "comments",
        "created_at",
        "updated_at",
        "closed_at",
    ):
        assert key in body
    assert body["assignee"]["login"] == "dev" and body["labels"][0]["name"] == "bug"
    assert "pull_request" not in body
    assert get(fake, f"/repos/acme/web/issues/{pr.number}").json()["pull_request"]["html_url"].endswith("/pull/2")


def test_etag_304_does_not_spend_the_rate_limit(fake):
    fake.create_issue("acme/web", "one")
    first = get(fake, "/repos/acme/web/issues")
    remaining = int(first.headers["x-ratelimit-remaining"])
    again = get(fake, "/repos/acme/web/issues", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert int(again.headers["x-ratelimit-remaining"]) == remaining
    fake.create_issue("acme/web", "two")
    changed = get(fake, "/repos/acme/web/issues", headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200
    assert int(changed.headers["x-ratelimit-remaining"]) == remaining - 1
    assert int(changed.headers["x-ratelimit-reset"]) > 1_600_000_000


def test_comments_create_list_and_edit(fake):
    issue = fake.create_issue("acme/web", "crash")
    created = send(fake, "POST", f"/repos/acme/web/issues/{issue.number}/comments", {"body": "hello"})
    assert created.status_code == 201
    cid = created.json()["id"]
    edited = send(fake, "PATCH", f"/repos/acme/web/issues/comments/{cid}", {"body": "edited"})
    assert edited.status_code == 200 and edited.json()["body"] == "edited"
    listed = get(fake, f"/repos/acme/web/issues/{issue.number}/comments").json()
    assert [c["body"] for c in listed] == ["edited"]
    theirs = fake.comment(issue, "a person", user="dev")
    assert send(fake, "PATCH", f"/repos/acme/web/issues/comments/{theirs.id}", {"body": "x"}).status_code == 403
    assert send(fake, "POST", f"/repos/acme/web/issues/{issue.number}/comments", {}).status_code == 422


def test_transferred_issue_answers_301_and_deleted_410(fake):
    issue = fake.create_issue("acme/web", "moving")
    old_number = issue.number
    fake.transfer(issue, "acme/sdk")
    moved = get(fake, f"/repos/acme/web/issues/{old_number}", allow_redirects=False)
    assert moved.status_code == 301
    followed = get(fake, f"/repos/acme/web/issues/{old_number}")
    assert followed.json()["id"] == issue.id
    assert followed.json()["repository_url"].endswith("/repos/acme/sdk")
    fake.delete(issue)
    assert get(fake, f"/repos/acme/sdk/issues/{issue.number}").status_code == 410


def test_secondary_rate_limit_on_demand(fake):
    fake.secondary_limit(count=1, retry_after=7)
    limited = get(fake, "/user")
    assert limited.status_code == 403 and limited.headers["retry-after"] == "7"
    assert get(fake, "/user").status_code == 200


def test_secondary_rate_limit_without_retry_after_leaves_the_budget(fake):
    fake.secondary_limit(count=1, retry_after=None)
    limited = get(fake, "/user")
    assert limited.status_code == 403 and "retry-after" not in limited.headers
    assert int(limited.headers["x-ratelimit-remaining"]) > 0
    assert "secondary rate limit" in limited.json()["message"]


def test_primary_rate_limit_answers_403_with_remaining_zero(fake):
    fake.rate_remaining = 1
    assert get(fake, "/user").status_code == 200
    spent = get(fake, "/user")
    assert spent.status_code == 403 and spent.headers["x-ratelimit-remaining"] == "0"


# -- the connector against the fake ---------------------------------------------------------


def test_first_sync_costs_its_pages_and_an_idle_cycle_is_free(fake):
    for n in range(250):
        fake.create_issue("acme/web", f"bug {n}")
    fake.create_issue("acme/sdk", "public one", assignee="dev")
    fake.create_issue("acme/sdk", "a PR", pull_request=True)
    c = connector(fake)
    fake.reset_counts()
    cursor = None
    records = []
    for page in c.poll(None):
        records += page.records
        cursor = page.cursor
    assert len({r.ref.id for r in records}) == 251
    sdk = next(r for r in records if r.team == "acme/sdk")
    assert sdk.public is True and sdk.state is StateCategory.STARTED
    assert fake.total_requests() == 2 + 3 + 1  # visibility x2, 3 pages of web, 1 of sdk
    for _ in range(2):  # one settling read (the window moved), then free 304s
        for page in c.poll(cursor):
            cursor = page.cursor
    fake.reset_counts()
    remaining = fake.rate_remaining
    pages = list(c.poll(cursor))
    assert [p.records for p in pages] == [[]]
    assert fake.counts == {"GET /repos/{owner}/{repo}/issues": 2}
    assert fake.rate_remaining == remaining  # 304s are free


def test_changes_are_seen_and_a_repository_turning_public_is_noticed(fake):
    issue = fake.create_issue("acme/web", "bug")
    c = connector(fake, repos=("acme/web",), visibility_ttl=0)
    cursor = None
    for page in c.poll(None):
        cursor = page.cursor
    fake.close(issue, "completed")
    fake.set_visibility("acme/web", "public")
    changed = [r for page in c.poll(cursor) for r in page.records]
    assert [(r.state, r.public) for r in changed] == [(StateCategory.COMPLETED, True)]


def test_context_comment_is_scrubbed_when_the_repository_turns_public(fake):
    issue = fake.create_issue("acme/web", "bug")
    c = connector(fake, repos=("acme/web",), write_visibility_ttl=0)  # read before every write
    key = f"acme/web#{issue.number}"
    c.attach_ticket(key, "https://acme.zendesk.com/agent/tickets/1", "Jane Doe locked out", "Acme Corp", "1" * 20)
    c.attach_ticket(key, "https://acme.zendesk.com/agent/tickets/2", "Bob: crash", "Beta Inc", "2" * 20)
    (comment,) = fake.comments_of(issue)
    assert "Jane Doe locked out" in comment.body and "Linked support tickets: 2" in comment.body
    fake.set_visibility("acme/web", "public")
    c.attach_ticket(key, "https://acme.zendesk.com/agent/tickets/3", "Carol", "Gamma", "3" * 20)
    (comment,) = fake.comments_of(issue)
    for text in ("Jane", "Acme", "Bob", "Beta", "Carol", "Gamma", "zendesk"):
        assert text not in comment.body
    assert "Linked support tickets: 3" in comment.body
    with pytest.raises(PublicRepositoryRefused):
        c.add_comment(key, "Jane Doe from Acme", "4" * 20, customer_data=True)
    assert len(fake.comments_of(issue)) == 1


def test_a_burst_of_writes_reads_a_public_repositorys_visibility_once_per_write_visibility_ttl(fake):
    fake.set_visibility("acme/web", "public")
    issues = [fake.create_issue("acme/web", f"bug {n}") for n in range(3)]
    clock = Clock(datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc))
    config = GitHubConfig(kind="github", url=fake.base_url, token=TOKEN, repositories=["acme/web"], mutation_interval=0)
    c = GitHubConnector("gh", config, sleep=lambda s: None, clock=clock)
    fake.reset_counts()
    for n, issue in enumerate(issues):
        c.add_comment(f"acme/web#{issue.number}", "hello", f"{n:020x}")
    assert fake.counts["GET /repos/{owner}/{repo}"] == 1
    clock.advance(61)  # the next write after the minute reads it again
    c.add_comment(f"acme/web#{issues[0].number}", "hello again", "9" * 20)
    assert fake.counts["GET /repos/{owner}/{repo}"] == 2


def test_a_private_repository_is_read_before_every_write_so_a_turn_to_public_is_never_missed(fake):
    issues = [fake.create_issue("acme/web", f"bug {n}") for n in range(2)]
    clock = Clock(datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc))
    config = GitHubConfig(kind="github", url=fake.base_url, token=TOKEN, repositories=["acme/web"], mutation_interval=0)
    c = GitHubConnector("gh", config, sleep=lambda s: None, clock=clock)
    fake.reset_counts()
    c.add_comment(f"acme/web#{issues[0].number}", "Jane Doe from Acme", "1" * 20, customer_data=True)
    fake.set_visibility("acme/web", "public")  # a second later, well within write_visibility_ttl
    with pytest.raises(PublicRepositoryRefused):
        c.add_comment(f"acme/web#{issues[1].number}", "Jane Doe from Acme", "2" * 20, customer_data=True)
    assert fake.counts["GET /repos/{owner}/{repo}"] == 2
    assert fake.comments_of(issues[1]) == []


def test_upsert_keeps_one_comment_and_markers_are_found(fake):
    issue = fake.create_issue("acme/web", "bug")
    c = connector(fake, repos=("acme/web",))
    c.check()  # learns its own login, so only its comments are taken for the slot
    key = f"acme/web#{issue.number}"
    fake.comment(issue, "a person quoting <!-- syncd:context -->", user="dev")
    c.upsert_comment(key, "First context", "5" * 20)
    c.upsert_comment(key, "Second context", "6" * 20)
    ours = [x for x in fake.comments_of(issue) if x.user == "syncd-bot"]
    assert len(ours) == 1 and ours[0].body.startswith("Second context")
    assert c.find_marker(key, "6" * 20) and not c.find_marker(key, "5" * 20)
    fake.reset_counts()
    c.upsert_comment(key, "Second context", "6" * 20)  # unchanged: no write
    assert not any(e.startswith(("POST", "PATCH")) for e in fake.counts)


def test_the_comment_the_store_names_is_read_by_id_not_looked_for(fake):
    from connectors.base import SlotRecord

    issue = fake.create_issue("acme/sdk", "bug")
    key = f"acme/sdk#{issue.number}"
    for n in range(3):
        fake.comment(issue, f"people talking {n}", user="dev")
    first = connector(fake).upsert_comment(key, "2 tickets", "5" * 20, "demand")
    fresh = connector(fake)  # a new process: the store's word is all it has
    fake.reset_counts()
    again = fresh.upsert_comment(key, "3 tickets", "6" * 20, "demand", known=SlotRecord(True, first.id))
    assert again.id == first.id
    assert "GET /repos/{owner}/{repo}/issues/{number}/comments" not in fake.counts  # no scan
    assert fake.counts["GET /repos/{owner}/{repo}/issues/comments/{comment_id}"] == 1


def test_transfer_and_delete_through_the_connector(fake):
    issue = fake.create_issue("acme/web", "moving")
    c = connector(fake)
    old_key = f"acme/web#{issue.number}"
    fake.transfer(issue, "acme/sdk")
    moved = c.get_issue(old_key)
    assert (moved.ref.id, moved.key, moved.public) == (str(issue.id), f"acme/sdk#{issue.number}", True)
    c.add_comment(old_key, "shipped", "7" * 20)
    assert c.find_marker(moved.key, "7" * 20)
    assert c.get_issue(str(issue.id)).key == moved.key  # the id is known from the read
    fake.delete(issue)
    fake.reset_counts()
    with pytest.raises(Gone):
        c.get_issue(moved.key)
    assert fake.total_requests() == 1


def test_secondary_limit_is_waited_out_by_the_connector(fake):
    issue = fake.create_issue("acme/web", "bug")
    waits = []
    config = GitHubConfig(kind="github", url=fake.base_url, token=TOKEN, repositories=["acme/web"])
    c = GitHubConnector("gh", config, sleep=waits.append)
    fake.secondary_limit(count=1, retry_after=42)
    assert c.get_issue(f"acme/web#{issue.number}").title == "bug"
    assert 42.0 in waits


def test_secondary_limit_without_retry_after_is_waited_out_not_taken_for_refused_credentials(fake):
    issue = fake.create_issue("acme/web", "bug")
    waits = []
    config = GitHubConfig(kind="github", url=fake.base_url, token=TOKEN, repositories=["acme/web"], mutation_interval=0)
    c = GitHubConnector("gh", config, sleep=waits.append)
    fake.secondary_limit(count=2, retry_after=None)
    c.add_comment(f"acme/web#{issue.number}", "hello", "d" * 20)
    assert waits == [60.0, 120.0]  # at least a minute, then longer
    assert [cm.body for cm in fake.comments_of(issue)][-1].startswith("hello")


def test_cursor_is_json_and_drops_repositories_no_longer_configured(fake):
    fake.create_issue("acme/web", "bug")
    c = connector(fake)
    cursor = None
    for page in c.poll(None):
        cursor = page.cursor
    assert set(json.loads(cursor)["repos"]) == {"acme/web", "acme/sdk"}
    only_web = connector(fake, repos=("acme/web",))
    for page in only_web.poll(cursor):
        cursor = page.cursor
    assert set(json.loads(cursor)["repos"]) == {"acme/web"}


def test_fifty_tickets_attach_in_one_edit(fake):
    issue = fake.create_issue("acme/web", "popular bug")
    c = connector(fake, repos=("acme/web",))
    key = f"acme/web#{issue.number}"
    tickets = [(f"https://acme.zendesk.com/agent/tickets/{n}", f"Ticket {n}", "") for n in range(50)]
    fake.reset_counts()
    c.attach_tickets(key, tickets, "8" * 20)
    (comment,) = fake.comments_of(issue)
    assert "Linked support tickets: 50" in comment.body and "[Ticket 49]" in comment.body
    assert fake.total_requests() == 3  # find the comment, visibility (304 or 200), one write


def test_a_person_editing_a_comment_is_named_by_graphql_and_rest_keeps_the_author(fake):
    issue = fake.create_issue("acme/web", "Export fails")
    mine = send(fake, "POST", "/repos/acme/web/issues/1/comments", {"body": "syncd's text"}).json()
    fake.edit_comment(mine["id"], "a person's text", user="ada-novak")
    [listed] = get(fake, "/repos/acme/web/issues/1/comments").json()
    assert (listed["body"], listed["user"]["login"]) == ("a person's text", "syncd-bot")  # REST: the author stays
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on IssueComment { id editor { login } lastEditedAt } } }"
    answer = send(fake, "POST", "/graphql", {"query": query, "variables": {"ids": [mine["node_id"], "nope"]}}).json()
    assert answer["data"]["nodes"][0]["editor"]["login"] == "ada-novak"
    assert answer["data"]["nodes"][1] is None
    assert issue.comment_ids == [mine["id"]]


def test_an_issue_the_feed_read_with_no_comment_gets_syncds_comment_without_a_scan(fake):
    bare, talked = fake.create_issue("acme/web", "bare"), fake.create_issue("acme/web", "talked")
    fake.comment(talked, "a person's comment")
    c = connector(fake, repos=("acme/web",))
    for _ in c.poll(None):
        pass
    fake.reset_counts()
    c.attach_ticket(f"acme/web#{bare.number}", "https://acme.zendesk.com/agent/tickets/1", "One", "", "1" * 20)
    assert "GET /repos/{owner}/{repo}/issues/{number}/comments" not in fake.counts
    c.attach_ticket(f"acme/web#{talked.number}", "https://acme.zendesk.com/agent/tickets/2", "Two", "", "2" * 20)
    assert fake.counts["GET /repos/{owner}/{repo}/issues/{number}/comments"] == 1  # it may hold syncd's
    (comment,) = fake.comments_of(bare)
    assert "Linked support tickets: 1" in comment.body


def test_a_new_process_whose_feed_answers_304_still_knows_which_issues_hold_no_comment(fake):
    """The cursor keeps, with the listing's ETag, the issues that had no comment: a new process
    whose poll is answered 304 (nothing changed) writes syncd's first comment there without a
    scan, and one whose listing changed (a comment came) reads it again and scans."""
    bare, talked = fake.create_issue("acme/web", "bare"), fake.create_issue("acme/web", "talked")
    fake.comment(talked, "a person's comment")
    cursor = [p.cursor for p in connector(fake, repos=("acme/web",)).poll(None)][-1]
    assert json.loads(cursor)["repos"]["acme/web"]["quiet"] == [bare.number]

    fake.reset_counts()
    c = connector(fake, repos=("acme/web",))
    (idle,) = list(c.poll(cursor))
    assert idle.records == [] and fake.counts["GET /repos/{owner}/{repo}/issues"] == 1
    c.attach_ticket(f"acme/web#{bare.number}", "https://acme.zendesk.com/agent/tickets/1", "One", "", "1" * 20)
    assert "GET /repos/{owner}/{repo}/issues/{number}/comments" not in fake.counts
    c.attach_ticket(f"acme/web#{talked.number}", "https://acme.zendesk.com/agent/tickets/2", "Two", "", "2" * 20)
    assert fake.counts["GET /repos/{owner}/{repo}/issues/{number}/comments"] == 1  # it may hold syncd's

    # bare now holds syncd's comment: the listing changed, so the old cursor vouches for nothing
    fake.reset_counts()
    c = connector(fake, repos=("acme/web",))
    pages = list(c.poll(cursor))
    assert [r.key for p in pages for r in p.records] != []
    assert json.loads(pages[-1].cursor)["repos"]["acme/web"]["quiet"] == []
    c.upsert_comment(f"acme/web#{bare.number}", "2 tickets", "3" * 20, "demand")
    assert fake.counts["GET /repos/{owner}/{repo}/issues/{number}/comments"] == 1
    assert len(fake.comments_of(bare)) == 2  # the context comment and the new demand comment


def test_the_repository_comment_list_filters_sorts_and_pages(fake):
    issue = fake.create_issue("acme/web", "crash")
    other = fake.create_issue("acme/sdk", "elsewhere")
    comments = [fake.comment(issue, f"c{n}", user="dev") for n in range(3)]
    fake.comment(other, "not this repository", user="dev")
    listed = get(fake, "/repos/acme/web/issues/comments", params={"per_page": 2, "sort": "updated"})
    assert [c["body"] for c in listed.json()] == ["c0", "c1"]
    assert listed.json()[0]["issue_url"].endswith(f"/repos/acme/web/issues/{issue.number}")
    nxt = listed.links["next"]["url"]
    assert "/repositories/" in nxt and "/issues/comments?" in nxt
    assert [c["body"] for c in get(fake, nxt.replace(fake.base_url, "")).json()] == ["c2"]
    since = get(fake, "/repos/acme/web/issues/comments", params={"since": "2999-01-01T00:00:00Z"})
    assert since.json() == []
    assert get(fake, "/repos/acme/web/issues/comments", params={"sort": "size"}).status_code == 422
    etag = get(fake, "/repos/acme/web/issues/comments").headers["ETag"]
    idle = get(fake, "/repos/acme/web/issues/comments", headers={"If-None-Match": etag})
    assert idle.status_code == 304
    fake.edit_comment(comments[0], "c0 edited", user="dev")
    assert get(fake, "/repos/acme/web/issues/comments", headers={"If-None-Match": etag}).status_code == 200


def test_an_idle_comment_feed_is_one_free_request_per_repository(fake):
    issue = fake.create_issue("acme/web", "crash")
    c = connector(fake, repos=("acme/web",))
    c.read_comments = True
    cursor = None
    for _ in range(3):  # the first read, the settling read, then idle
        for page in c.poll(cursor):
            cursor = page.cursor
    fake.comment(issue, "a new finding", user="dev")
    remarks = [r for p in c.poll(cursor) for r in p.remarks]
    assert [r.body for r in remarks] == ["a new finding"]
    cursor = [p.cursor for p in c.poll(cursor)][-1]  # the window moved: one settling read
    fake.reset_counts()
    remaining = fake.rate_remaining
    pages = list(c.poll(cursor))
    assert [p.remarks for p in pages] == [[]]
    assert fake.counts == {"GET /repos/{owner}/{repo}/issues": 1, "GET /repos/{owner}/{repo}/issues/comments": 1}
    assert fake.rate_remaining == remaining


def test_comments_present_conditional_reads_and_a_deleted_comment(fake):
    issue = fake.create_issue("acme/web", "crash")
    kept, deleted = fake.comment(issue, "kept"), fake.comment(issue, "to be deleted")
    c = connector(fake)
    c.get_issue(f"acme/web#{issue.number}")  # the issue's id is known from a read, as after a poll
    ids = {str(kept.id): str(issue.id), str(deleted.id): str(issue.id)}
    first = c.comments_present(ids, {})
    assert first.present == set(ids) and first.gone == set() and first.requests == 2
    assert set(first.validators) == set(ids)
    fake.delete_comment(deleted)
    before = fake.rate_remaining
    second = c.comments_present(ids, first.validators)
    assert second.present == {str(kept.id)} and second.gone == {str(deleted.id)} and second.requests == 2
    assert fake.rate_remaining == before - 1  # the unchanged one answered 304, free
    assert get(fake, f"/repos/acme/web/issues/{issue.number}/comments").json()[0]["id"] == kept.id


def test_comments_present_asks_nothing_outside_the_followed_repositories(fake):
    issue = fake.create_issue("acme/sdk", "crash")
    comment = fake.comment(issue, "hello")
    c = connector(fake, repos=("acme/web",))
    answer = c.comments_present({str(comment.id): f"acme/sdk#{issue.number}"}, {})
    assert (answer.present, answer.gone, answer.requests) == (set(), set(), 0)


@pytest.mark.parametrize("damaged", [5, "12", [None, "x", 1.5], {"n": 1}])
def test_a_damaged_quiet_list_in_the_cursor_is_read_as_none(fake, damaged):
    """A cursor whose list of issues with no comment is damaged vouches for none: the
    issue's first comment looks first, and the poll goes on."""
    bare = fake.create_issue("acme/web", "bare")
    cursor = json.loads([p.cursor for p in connector(fake, repos=("acme/web",)).poll(None)][-1])
    cursor["repos"]["acme/web"]["quiet"] = damaged
    fake.reset_counts()
    c = connector(fake, repos=("acme/web",))
    (idle,) = list(c.poll(json.dumps(cursor)))
    assert idle.records == []
    c.attach_ticket(f"acme/web#{bare.number}", "https://acme.zendesk.com/agent/tickets/1", "One", "", "1" * 20)
    assert fake.counts["GET /repos/{owner}/{repo}/issues/{number}/comments"] == 1
