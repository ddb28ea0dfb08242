"""The GitHub fake's issue creation, labels and creator filter over real HTTP on
127.0.0.1, and the connector's handoff writes driven against it (including a
create whose answer is lost)."""

from __future__ import annotations

import pytest
import requests

from connectors.base import marker_token
from connectors.github.connector import GitHubConfig, GitHubConnector, PublicRepositoryRefused
from connectors.github.fake import GitHubFake
from syncd.errors import Gone, TransientError
from syncd.sandbox.server import Sandbox
from syncd.writes import IssueDraft

TOKEN = "sandbox-github-token"
KEYS = [f"{n:x}" * 20 for n in range(1, 10)]
CREATE = "POST /repos/{owner}/{repo}/issues"


@pytest.fixture
def fake():
    service = GitHubFake()
    service.create_repo("acme/web", private=True)
    service.create_repo("acme/sdk")
    service.create_label("acme/web", "Bug")
    with Sandbox([service]):
        yield service


def send(fake, method, path, body=None, token=TOKEN, **kwargs):
    return requests.request(
        method, fake.base_url + path, json=body, timeout=5, headers={"Authorization": f"Bearer {token}"}, **kwargs
    )


def connector(fake, repos=("acme/web", "acme/sdk"), **extra) -> GitHubConnector:
    extra.setdefault("sleep", lambda s: None)
    sleep = extra.pop("sleep")
    config = GitHubConfig(
        kind="github",
        url=fake.base_url,
        token=TOKEN,
        repositories=list(repos),
        mutation_interval=extra.pop("mutation_interval", 0),
        **extra,
    )
    return GitHubConnector("gh", config, sleep=sleep)


# -- the fake -------------------------------------------------------------------------


def test_create_issue_validates_and_creates_unknown_labels_like_github(fake):
    for bad in (
        {},
        {"title": ""},
        {"title": "t", "labels": "bug"},
        {"title": "t", "body": 5},
        {"title": "x" * 257},
        {"title": "t", "labels": [3]},
    ):
        assert send(fake, "POST", "/repos/acme/web/issues", bad).status_code == 422, bad
    assert send(fake, "POST", "/repos/acme/nope/issues", {"title": "t"}).status_code == 404
    assert send(fake, "POST", "/repos/acme/web/issues", {"title": "t"}, token="wrong").status_code == 401
    created = send(fake, "POST", "/repos/acme/web/issues", {"title": "t", "body": "b", "labels": ["bug", "new"]})
    assert created.status_code == 201
    body = created.json()
    assert (body["title"], body["body"], body["user"]["login"]) == ("t", "b", "syncd-bot")
    assert [x["name"] for x in body["labels"]] == ["Bug", "new"]  # the existing spelling wins
    assert sorted(fake.repos["acme/web"].labels.values()) == ["Bug", "new"]
    fake.disable_issues("acme/sdk")
    gone = send(fake, "POST", "/repos/acme/sdk/issues", {"title": "t"})
    assert gone.status_code == 410 and "disabled" in gone.json()["message"]


def test_labels_are_listed_in_pages_with_a_link_header(fake):
    for n in range(5):
        fake.create_label("acme/web", f"area-{n}")
    first = send(fake, "GET", "/repos/acme/web/labels", params={"per_page": 4})
    names = [x["name"] for x in first.json()]
    assert f"/repositories/{fake.repos['acme/web'].id}/labels?" in first.links["next"]["url"]
    second = send(fake, "GET", first.links["next"]["url"].removeprefix(fake.base_url))
    names += [x["name"] for x in second.json()]
    assert names == ["area-0", "area-1", "area-2", "area-3", "area-4", "Bug"]
    assert "next" not in second.links
    assert set(first.json()[0]) >= {"id", "node_id", "url", "name", "color", "default", "description"}


def test_the_issue_list_filters_by_creator(fake):
    fake.create_issue("acme/web", "by a person", user="dev")
    mine = fake.create_issue("acme/web", "by syncd", user="syncd-bot")
    listed = send(
        fake,
        "GET",
        "/repos/acme/web/issues",
        params={"creator": "syncd-bot", "state": "all", "sort": "created", "direction": "desc"},
    ).json()
    assert [i["number"] for i in listed] == [mine.number]
    assert len(send(fake, "GET", "/repos/acme/web/issues").json()) == 2


# -- the connector against the fake ------------------------------------------------------


def test_create_issue_costs_one_write_and_skips_labels_the_repository_lacks(fake):
    c = connector(fake)
    fake.reset_counts()
    result = c.create_issue("acme/web", IssueDraft("Export fails", "Steps:\n1. export", ("bug", "customer")), KEYS[0])
    (issue,) = fake.issues_in("acme/web")
    assert result.id == str(issue.id) and issue.user == "syncd-bot"
    assert issue.labels == ["Bug"] and "customer" not in fake.repos["acme/web"].labels
    assert issue.body.endswith(f"<!-- {marker_token(KEYS[0])} -->\n")
    assert fake.counts == {"GET /repos/{owner}/{repo}": 1, "GET /repos/{owner}/{repo}/labels": 1, CREATE: 1}
    fake.reset_counts()
    c.create_issue("acme/web", IssueDraft("Another", "x", ("bug",)), KEYS[1])
    # Visibility again (a free 304 when unchanged), labels from the cache, the one write.
    assert fake.counts == {"GET /repos/{owner}/{repo}": 1, CREATE: 1}
    assert c.get_issue(result.id).key == f"acme/web#{issue.number}"
    assert c.find_created("acme/web", KEYS[0]) == result.id
    assert c.find_created("acme/web", KEYS[1]) == str(fake.issues_in("acme/web")[1].id)
    assert c.find_created("acme/web", KEYS[2]) is None
    assert c.is_private("acme/web") and not c.is_private("acme/sdk")


def test_a_created_issue_whose_answer_is_lost_is_found_and_not_created_twice(fake):
    """Crash-style: the issue is created but the answer is cut short; after a
    restart the outbox's check (find_created) finds it, so nothing is sent again."""
    draft = IssueDraft("Export fails", "Ticket `9f3c`", ("bug",))
    fake.inject("truncate", CREATE, count=1)
    with pytest.raises(TransientError) as err:
        connector(fake).create_issue("acme/web", draft, KEYS[0])
    assert err.value.maybe_applied
    assert fake.counts[CREATE] == 1 and len(fake.issues_in("acme/web")) == 1

    def deliver(c: GitHubConnector, key: str) -> str:  # what delivery does with a `sending` create
        return c.find_created("acme/web", key) or c.create_issue("acme/web", draft, key).id

    restarted = connector(fake)  # a new process: nothing cached
    assert deliver(restarted, KEYS[0]) == str(fake.issues_in("acme/web")[0].id)
    assert fake.counts[CREATE] == 1 and len(fake.issues_in("acme/web")) == 1
    # Lost before it arrived (connection reset): not found, so sent once more.
    fake.inject("reset", CREATE, count=1)
    with pytest.raises(TransientError):
        restarted.create_issue("acme/web", draft, KEYS[1])
    assert len(fake.issues_in("acme/web")) == 1
    deliver(restarted, KEYS[1])
    assert len(fake.issues_in("acme/web")) == 2
    deliver(restarted, KEYS[1])
    assert len(fake.issues_in("acme/web")) == 2


def test_a_public_repository_gets_no_personal_data_and_issues_turned_off_is_clear(fake):
    c = connector(fake)
    fake.reset_counts()
    with pytest.raises(PublicRepositoryRefused):
        c.create_issue("acme/sdk", IssueDraft("Crash", "from jane@customer.example"), KEYS[0])
    assert CREATE not in fake.counts and fake.issues_in("acme/sdk") == []
    fake.disable_issues("acme/sdk")
    with pytest.raises(Gone) as err:
        c.create_issue("acme/sdk", IssueDraft("Crash", "Ticket `9f3c`"), KEYS[0])
    assert "acme/sdk" in str(err.value) and "turn them on" in str(err.value)


def test_the_demand_comment_is_kept_in_place_beside_the_context_comment(fake):
    waits: list[float] = []
    c = connector(fake, repos=("acme/web",), mutation_interval=1.0, sleep=waits.append)
    created = c.create_issue("acme/web", IssueDraft("Export fails", "x"), KEYS[0])
    c.upsert_comment(created.id, "**Demand**: 1 ticket, 1 organisation", KEYS[1], "demand")
    assert len(waits) == 1 and 0 < waits[0] <= 1.0  # the HTTP layer spaces the two writes
    c.attach_ticket(created.id, "https://acme.zendesk.com/agent/tickets/1", "Export", "Acme", KEYS[2])
    fake.reset_counts()
    c.upsert_comment(created.id, "**Demand**: 2 tickets, 2 organisations", KEYS[3], "demand")
    # The remembered comment is read by id (no scan of the issue's comments) and edited;
    # the repository is private, so its visibility is read again (a free 304) before the write.
    assert fake.counts == {
        "GET /repos/{owner}/{repo}": 1,
        "GET /repos/{owner}/{repo}/issues/comments/{comment_id}": 1,
        "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}": 1,
    }
    issue = fake.issues_in("acme/web")[0]
    demand, context = fake.comments_of(issue)
    assert demand.body.startswith("**Demand**: 2 tickets") and marker_token(KEYS[3]) in demand.body
    assert "Linked support tickets: 1" in context.body
    assert c.find_marker(created.id, KEYS[3]) and not c.find_marker(created.id, KEYS[1])
    fake.reset_counts()
    c.upsert_comment(created.id, "**Demand**: 2 tickets, 2 organisations", KEYS[4], "demand")
    assert not any(e.startswith(("POST", "PATCH")) for e in fake.counts)
    # Someone strips the slot marker from the remembered comment: it no longer holds the slot.
    demand.body = "**Demand**: 2 tickets"
    c.upsert_comment(created.id, "**Demand**: 3 tickets", KEYS[5], "demand")
    first_lines = [x.body.split("\n")[0] for x in fake.comments_of(issue)]
    assert first_lines == ["**Demand**: 2 tickets", context.body.split("\n")[0], "**Demand**: 3 tickets"]
