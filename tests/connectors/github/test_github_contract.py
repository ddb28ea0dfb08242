"""Every request the GitHub connector makes conforms to GitHub's OpenAPI description.

GitHub answers some requests with URLs of its own choosing: the ``Link``
header's next page and a transferred issue's ``Location`` point at
``/repositories/{repository_id}/issues...``, a form the description leaves
out. Those URLs are GitHub's, not the connector's; before validation they are
re-addressed to the equivalent ``/repos/{owner}/{repo}/issues...`` so that the
parameters the connector carried over are still checked.
"""

from __future__ import annotations

import json
import re

import pytest
import responses

from connectors.github.connector import GitHubConfig, GitHubConnector
from tests.contract.openapi import assert_calls_conform, contract_fixture, recorded_requests

API = "https://api.github.com"
GHE = "https://git.example.com/api/v3"
KEY = "c" * 20

pytestmark = pytest.mark.contract

github_contract = contract_fixture("github/api.github.com.json")


def readdressed(calls, repo: str):
    """Requests with GitHub-chosen ``/repositories/{id}`` URLs mapped to ``/repos/{repo}``."""
    out = []
    for request in recorded_requests(calls):
        copy = request.copy()
        copy.url = re.sub(r"/repositories/\d+/", f"/repos/{repo}/", copy.url)
        out.append(copy)
    return out


def connector(base: str, repo: str) -> GitHubConnector:
    config = GitHubConfig(kind="github", url=base, token="ghp_contract", repositories=[repo], mutation_interval=0)
    return GitHubConnector("gh", config, sleep=lambda s: None)


def issue(number: int, repo: str, base: str = API) -> dict:
    return {
        "id": 100 + number,
        "number": number,
        "title": "t",
        "state": "open",
        "state_reason": None,
        "html_url": f"https://github.com/{repo}/issues/{number}",
        "repository_url": f"{base}/repos/{repo}",
        "updated_at": "2024-05-01T10:00:00Z",
        "assignee": None,
        "assignees": [],
    }


@pytest.mark.parametrize("base", [API, GHE])
@responses.activate
def test_poll_requests_conform(github_contract, fixtures_dir, base):
    recorded = json.loads(
        (fixtures_dir / "github" / "octokit-fixtures" / "paginate-issues.normalized-fixture.json").read_text()
    )
    repo = "octokit-fixture-org/paginate-issues"
    responses.add(
        responses.GET, f"{base}/repos/{repo}", json={"private": False, "visibility": "public"}, headers={"ETag": '"r1"'}
    )
    for i, interaction in enumerate(recorded):
        path, _, query = interaction["path"].partition("?")
        link = interaction["headers"]["link"].replace(API, base)
        match = [responses.matchers.query_string_matcher(query)] if i else []
        responses.add(
            responses.GET,
            f"{base}{path}",
            json=interaction["response"],
            match=match,
            headers={"Link": link, "ETag": interaction["headers"]["etag"]},
        )
    c = connector(base, repo)
    pages = list(c.poll(None))
    assert sum(len(p.records) for p in pages) == 13
    # An idle poll: the conditional request carries If-None-Match.
    responses.add(responses.GET, f"{base}/repos/{repo}/issues", status=304)
    list(c.poll(json.dumps({"v": 1, "repos": {repo: {"since": "2024-01-01T00:00:00Z", "etag": '"e"'}}})))
    seen = assert_calls_conform(readdressed(responses.calls, repo), github_contract)
    assert set(seen) == {"GET /repos/{owner}/{repo}", "GET /repos/{owner}/{repo}/issues"}


@responses.activate
def test_check_reads_and_writes_conform(github_contract):
    repo = "acme/web"
    responses.add(responses.GET, f"{API}/user", json={"login": "syncd-bot"})
    responses.add(
        responses.GET, f"{API}/repos/{repo}", json={"private": True, "visibility": "private"}, headers={"ETag": '"r1"'}
    )
    moved = f"{API}/repositories/5/issues/9"
    responses.add(responses.GET, f"{API}/repos/{repo}/issues/3", status=301, headers={"Location": moved})
    responses.add(responses.GET, moved, json=issue(9, repo))
    responses.add(responses.GET, f"{API}/repos/{repo}/issues/9", json=issue(9, repo))
    responses.add(responses.GET, f"{API}/repos/{repo}/issues/9/comments", json=[])
    responses.add(
        responses.POST,
        f"{API}/repos/{repo}/issues/9/comments",
        status=201,
        json={"id": 70, "body": "x", "updated_at": "2024-05-01T10:00:00Z", "issue_url": f"{API}/repos/{repo}/issues/9"},
    )
    responses.add(
        responses.GET,
        f"{API}/repos/{repo}/issues/comments/70",
        json={
            "id": 70,
            "body": "<!-- syncd:context -->",
            "user": {"login": "syncd-bot"},
            "issue_url": f"{API}/repos/{repo}/issues/9",
        },
    )
    responses.add(
        responses.PATCH,
        f"{API}/repos/{repo}/issues/comments/70",
        json={"id": 70, "updated_at": "2024-05-01T10:00:01Z", "issue_url": f"{API}/repos/{repo}/issues/9"},
    )

    c = connector(API, repo)
    c.check()
    assert c.get_issue(f"{repo}#3").key == f"{repo}#9"
    c.add_comment(f"{repo}#9", "Shipped", KEY)
    c.attach_ticket(f"{repo}#9", "https://acme.zendesk.com/agent/tickets/1", "Login", "Acme", KEY)
    c.upsert_comment(f"{repo}#9", "Context", "d" * 20)
    c.find_marker(f"{repo}#9", KEY)
    # The existence check: a conditional GET per issue (304 unchanged, 410 deleted).
    responses.add(responses.GET, f"{API}/repos/{repo}/issues/4", status=304, headers={"ETag": '"e4"'})
    responses.add(responses.GET, f"{API}/repos/{repo}/issues/5", status=410, json={"message": "This issue was deleted"})
    presence = c.presence([f"{repo}#4", f"{repo}#5"], {f"{repo}#4": '"e4"'})
    assert presence.unchanged == {f"{repo}#4"} and set(presence.gone) == {f"{repo}#5"}
    assert responses.calls[-2].request.headers["If-None-Match"] == '"e4"'

    seen = assert_calls_conform(readdressed(responses.calls, repo), github_contract)
    assert {
        "GET /user",
        "GET /repos/{owner}/{repo}/issues/{issue_number}",
        "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
        "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
        "GET /repos/{owner}/{repo}/issues/comments/{comment_id}",
        "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
    } <= set(seen)


def test_the_contract_catches_a_wrong_request(github_contract):
    """The validator is not a rubber stamp: a parameter GitHub does not take is refused."""
    import requests

    bad = requests.Request("GET", f"{API}/repos/acme/web/issues", params={"updated_since": "x"}).prepare()
    with pytest.raises(AssertionError, match="updated_since"):
        assert_calls_conform([bad], github_contract)
    wrong_state = requests.Request("GET", f"{API}/repos/acme/web/issues", params={"state": "everything"}).prepare()
    with pytest.raises(AssertionError):
        assert_calls_conform([wrong_state], github_contract)


@pytest.mark.parametrize("base", [API, GHE])
@responses.activate
def test_handoff_requests_conform(github_contract, fixtures_dir, base):
    """create_issue (visibility, labels through their pages, the create), find_created and a slot comment."""
    from syncd.writes import IssueDraft

    repo = "octokit-fixture-org/labels"
    recorded = json.loads((fixtures_dir / "github" / "octokit-fixtures" / "labels.normalized-fixture.json").read_text())
    labels = next(i["response"] for i in recorded if i["method"] == "get" and i["path"].endswith("/labels"))
    responses.add(
        responses.GET, f"{base}/repos/{repo}", json={"private": True, "visibility": "private"}, headers={"ETag": '"r1"'}
    )
    responses.add(
        responses.GET,
        f"{base}/repos/{repo}/labels",
        json=labels[:2],
        headers={"Link": f'<{base}/repositories/7/labels?per_page=100&page=2>; rel="next"'},
    )
    responses.add(responses.GET, f"{base}/repositories/7/labels", json=labels[2:])
    created = issue(4, repo, base) | {"body": f"x\n\n<!-- syncd:{KEY} -->\n"}
    responses.add(responses.POST, f"{base}/repos/{repo}/issues", status=201, json=created)
    responses.add(responses.GET, f"{base}/user", json={"login": "syncd-bot"})
    responses.add(responses.GET, f"{base}/repos/{repo}/issues", json=[created])
    responses.add(responses.GET, f"{base}/repos/{repo}/issues/4/comments", json=[])
    responses.add(
        responses.POST,
        f"{base}/repos/{repo}/issues/4/comments",
        status=201,
        json={"id": 71, "updated_at": "2024-05-01T10:00:00Z", "issue_url": f"{base}/repos/{repo}/issues/4"},
    )

    c = connector(base, repo)
    result = c.create_issue(repo, IssueDraft("Export fails", "x", ("bug", "wontfix", "missing")), KEY)
    assert c.find_created(repo, KEY) == result.id
    c.upsert_comment(result.id, "**Demand**: 2 tickets", "d" * 20, "demand")

    posted = json.loads(
        next(
            x for x in responses.calls if x.request.url.endswith("/issues") and x.request.method == "POST"
        ).request.body
    )
    assert posted["labels"] == ["bug", "wontfix"]
    seen = assert_calls_conform(readdressed(responses.calls, repo), github_contract)
    assert {
        "GET /repos/{owner}/{repo}",
        "GET /repos/{owner}/{repo}/labels",
        "POST /repos/{owner}/{repo}/issues",
        "GET /user",
        "GET /repos/{owner}/{repo}/issues",
        "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
    } <= set(seen)


def test_the_contract_catches_a_wrong_create(github_contract):
    """A create without a title, or with labels not given as a list, does not pass."""
    import requests

    for body in ({"body": "no title"}, {"title": "t", "labels": "bug"}):
        bad = requests.Request(
            "POST", f"{API}/repos/acme/web/issues", json=body, headers={"Authorization": "Bearer x"}
        ).prepare()
        with pytest.raises(AssertionError):
            assert_calls_conform([bad], github_contract)


def test_the_sandbox_secondary_limit_answer_conforms(github_contract):
    """The fake's secondary limit (403, no retry-after, requests remaining) is an answer the description allows."""
    import requests
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    from connectors.github.fake import GitHubFake
    from syncd.sandbox.server import Sandbox

    fake = GitHubFake()
    fake.create_repo("acme/web", private=True)
    issue = fake.create_issue("acme/web", "bug")
    token = next(iter(fake.tokens))
    path = f"/repos/acme/web/issues/{issue.number}/comments"
    with Sandbox([fake]):
        fake.secondary_limit(count=1, retry_after=None)
        answer = requests.post(
            fake.base_url + path, json={"body": "x"}, timeout=5, headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 403 and "retry-after" not in answer.headers
    assert int(answer.headers["x-ratelimit-remaining"]) > 0
    assert "secondary rate limit" in answer.json()["message"]
    request = answer.request.copy()
    request.url = "http://contract.invalid" + path
    github_contract.validate(request)
    github_contract.openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(answer))


@responses.activate
def test_opaque_rewrite_requests_conform(github_contract):
    """make_opaque: the issue's comments, the issue, a comment edited in place, the issue's title and body."""
    from connectors.base import OpaqueRewrite

    repo = "acme/billing"
    url = f"{API}/repos/{repo}/issues/7"
    private = {"title": "Export fails for Northwind", "body": "Customer: Northwind"}
    public = {"title": "Customer report T-1", "body": "Escalated from support (T-1)"}
    context = (
        "<!-- syncd:tickets -->\n**Linked support tickets: 1**\n\n- [Export](https://x.zendesk.com/agent/"
        "tickets/1) <!-- syncd:t=0123456789ab -->\n<!-- /syncd:tickets -->\n\n<!-- syncd:context -->\n"
    )
    stamp = "2024-05-01T10:00:00Z"
    responses.add(responses.GET, f"{API}/user", json={"login": "syncd-bot"})
    responses.add(
        responses.GET,
        f"{url}/comments",
        json=[
            {
                "id": 71,
                "body": context,
                "user": {"login": "syncd-bot"},
                "created_at": stamp,
                "updated_at": stamp,
                "issue_url": url,
            }
        ],
    )
    responses.add(
        responses.GET,
        url,
        json=issue(7, repo) | {"title": private["title"], "body": f"{private['body']}\n\n<!-- syncd:{KEY} -->\n"},
    )
    responses.add(
        responses.PATCH,
        f"{API}/repos/{repo}/issues/comments/71",
        json={"id": 71, "updated_at": stamp, "issue_url": url},
    )
    responses.add(responses.PATCH, url, json=issue(7, repo))

    result = connector(API, repo).make_opaque(
        f"{repo}#7", OpaqueRewrite({}, {}, {"key": KEY, "private": private, "public": public}), "e" * 20
    )
    assert len(result.rewritten) == 3
    seen = assert_calls_conform(recorded_requests(responses.calls), github_contract)
    assert {
        "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
        "GET /repos/{owner}/{repo}/issues/{issue_number}",
        "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
        "PATCH /repos/{owner}/{repo}/issues/{issue_number}",
    } <= set(seen)


@responses.activate
def test_comment_feed_requests_conform(github_contract):
    """The conversation mirror's read: the repository's comment list, its next page, the idle 304."""
    repo = "acme/web"
    responses.add(
        responses.GET, f"{API}/repos/{repo}", json={"private": True, "visibility": "private"}, headers={"ETag": '"r"'}
    )
    responses.add(responses.GET, f"{API}/repos/{repo}/issues", json=[], headers={"ETag": '"i"'})
    comment = {
        "id": 5,
        "issue_url": f"{API}/repos/{repo}/issues/9",
        "body": "fixed",
        "user": {"login": "ada", "id": 1, "type": "User"},
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:00:00Z",
    }
    responses.add(
        responses.GET,
        f"{API}/repos/{repo}/issues/comments",
        json=[comment],
        headers={"ETag": '"c"', "Link": f'<{API}/repositories/7/issues/comments?per_page=100&page=2>; rel="next"'},
    )
    responses.add(responses.GET, f"{API}/repositories/7/issues/comments", json=[{**comment, "id": 6}])
    c = connector(API, repo)
    c.read_comments = True
    pages = list(c.poll(None))
    assert [r.id for p in pages for r in p.remarks] == ["5", "6"]
    seen = assert_calls_conform(readdressed(responses.calls, repo), github_contract)
    assert "GET /repos/{owner}/{repo}/issues/comments" in seen


def test_the_fakes_repository_comment_list_conforms(github_contract):
    """What the sandbox answers to the comment feed's request is what GitHub's description allows."""
    import requests
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    from connectors.github.fake import SANDBOX_GITHUB_TOKEN, GitHubFake
    from syncd.sandbox.server import Sandbox

    fake = GitHubFake()
    fake.create_repo("acme/web", private=True)
    issue = fake.create_issue("acme/web", "crash")
    fake.comment(issue, "fixed in 4.2", user="ada")
    fake.comment(issue, "build passed", user="ci-bot")
    with Sandbox([fake]):
        path = "/repos/acme/web/issues/comments?since=2000-01-01T00%3A00%3A00Z&sort=updated&direction=asc&per_page=100"
        answer = requests.get(
            fake.base_url + path, headers={"Authorization": f"Bearer {SANDBOX_GITHUB_TOKEN}"}, timeout=5
        )
    request = answer.request.copy()
    request.url = "http://contract.invalid" + path
    github_contract.validate(request)
    github_contract.openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(answer))
    assert [(c["body"], c["user"]["type"]) for c in answer.json()] == [
        ("fixed in 4.2", "User"),
        ("build passed", "Bot"),
    ]


@responses.activate
def test_comment_existence_check_requests_conform(github_contract):
    """The check of mirrored comments: a conditional GET of each by id; 304 present, 404 deleted."""
    repo = "acme/web"
    responses.add(
        responses.GET, f"{API}/repos/{repo}", json={"private": True, "visibility": "private"}, headers={"ETag": '"r"'}
    )
    responses.add(responses.GET, f"{API}/repos/{repo}/issues/9", json=issue(9, repo))
    base = {
        "issue_url": f"{API}/repos/{repo}/issues/9",
        "body": "fixed",
        "user": {"login": "ada", "id": 1, "type": "User"},
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:00:00Z",
    }
    responses.add(
        responses.GET, f"{API}/repos/{repo}/issues/comments/5", json={**base, "id": 5}, headers={"ETag": '"c5"'}
    )
    responses.add(responses.GET, f"{API}/repos/{repo}/issues/comments/6", status=304, headers={"ETag": '"c6"'})
    responses.add(
        responses.GET,
        f"{API}/repos/{repo}/issues/comments/7",
        status=404,
        json={"message": "Not Found", "documentation_url": "https://docs.github.com/rest"},
    )
    c = connector(API, repo)
    issue_id = c.get_issue(f"{repo}#9").ref.id
    answer = c.comments_present({"5": issue_id, "6": issue_id, "7": issue_id}, {"6": '"c6"'})
    assert (answer.present, answer.gone, answer.requests) == ({"5", "6"}, {"7"}, 3)
    assert answer.validators == {"5": '"c5"', "6": '"c6"'}
    conditional = [c.request.headers.get("If-None-Match") for c in responses.calls if "/comments/" in c.request.url]
    assert conditional == [None, '"c6"', None]
    seen = assert_calls_conform(readdressed(responses.calls, repo), github_contract)
    assert "GET /repos/{owner}/{repo}/issues/comments/{comment_id}" in seen
