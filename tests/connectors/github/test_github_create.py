"""GitHub connector: the handoff writes (create_issue, find_created, is_private,
upsert_comment in a slot) against ``responses`` mocks fed with real recordings
from ../shared/fixtures/github (see test_github.py for the formats)."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from connectors.base import marker_token
from connectors.github.connector import LABEL_RECHECK, PublicRepositoryRefused
from syncd.errors import AuthError, Conflict, Gone, NotFound, PayloadError, TransientError
from syncd.writes import IssueDraft
from tests.connectors.github.test_github import API, Clock, add_repo, issue_body, make, octokit, replay

KEY = "e" * 20
OTHER = "f" * 20
REPO = "octokit-fixture-org/add-labels-to-issue"


def recorded_labels(fixtures_dir) -> list[dict]:
    """GitHub's default labels of a new repository, as recorded by octokit."""
    (listing,) = [i for i in octokit(fixtures_dir, "labels") if i["method"] == "get" and i["path"].endswith("/labels")]
    return listing["response"]


def recorded_created_issue(fixtures_dir) -> dict:
    (created,) = [i for i in octokit(fixtures_dir, "add-labels-to-issue") if i["path"].endswith("/issues")]
    assert created["status"] == 201
    return created["response"]


def mock_create(fixtures_dir, repo: str = REPO, *, public: bool = False) -> dict:
    add_repo(repo, public=public)
    responses.add(responses.GET, f"{API}/repos/{repo}/labels", json=recorded_labels(fixtures_dir))
    created = recorded_created_issue(fixtures_dir)
    responses.add(responses.POST, f"{API}/repos/{repo}/issues", status=201, json=created)
    return created


def posts(path_end: str = "/issues") -> list[dict]:
    return [
        json.loads(c.request.body)
        for c in responses.calls
        if c.request.method == "POST" and urlsplit(c.request.url).path.endswith(path_end)
    ]


def paths(method: str | None = None) -> list[str]:
    return [
        f"{c.request.method} {urlsplit(c.request.url).path}"
        for c in responses.calls
        if method is None or c.request.method == method
    ]


DRAFT = IssueDraft(
    title="Export times out  for large\naccounts",
    body="## What happens\n\nThe export stops.",
    labels=("bug", "Enhancement", "customer-escalation"),
    priority="sev1",
)


# -- create_issue ------------------------------------------------------------------


@responses.activate
def test_create_is_one_post_with_a_hidden_marker_and_only_existing_labels(fixtures_dir, caplog):
    created = mock_create(fixtures_dir)
    c = make([REPO], mutation_interval=0)
    with caplog.at_level(logging.INFO):
        result = c.create_issue(REPO, DRAFT, KEY)
    assert result.id == str(created["id"])
    assert result.updated_at is not None and result.updated_at.isoformat().startswith(created["updated_at"][:19])
    (sent,) = posts()
    assert sent["title"] == "Export times out for large accounts"
    assert sent["body"].startswith("## What happens\n\nThe export stops.")
    assert sent["body"].endswith(f"\n\n<!-- {marker_token(KEY)} -->\n")
    # "bug" and "enhancement" exist (in the repository's spelling); the third is skipped, not created.
    assert sent["labels"] == ["bug", "enhancement"]
    assert "priority" not in sent and "customer-escalation" in caplog.text
    assert paths() == [f"GET /repos/{REPO}", f"GET /repos/{REPO}/labels", f"POST /repos/{REPO}/issues"]
    # The new issue is known by id at once (get_issue, comments on it).
    assert c._locate(result.id).key == f"{REPO}#{created['number']}"


@responses.activate
def test_the_label_list_is_read_once_per_process(fixtures_dir):
    mock_create(fixtures_dir)
    c = make([REPO], mutation_interval=0)
    c.create_issue(REPO, DRAFT, KEY)
    c.create_issue(REPO, DRAFT, OTHER)
    assert paths("GET").count(f"GET /repos/{REPO}/labels") == 1
    assert len(posts()) == 2


@responses.activate
def test_a_label_missing_from_the_cache_is_looked_up_again_after_a_while(fixtures_dir):
    mock_create(fixtures_dir)
    later = recorded_labels(fixtures_dir) + [{"id": 7, "name": "Customer-Escalation"}]
    responses.add(responses.GET, f"{API}/repos/{REPO}/labels", json=later)
    clock = Clock()
    c = make([REPO], mutation_interval=0, clock=clock)
    c.create_issue(REPO, DRAFT, KEY)
    clock.now += LABEL_RECHECK - 1
    c.create_issue(REPO, DRAFT, KEY)  # still the cached list: no second read yet
    clock.now += 2
    c.create_issue(REPO, DRAFT, KEY)
    assert paths("GET").count(f"GET /repos/{REPO}/labels") == 2
    assert [p["labels"] for p in posts()] == [["bug", "enhancement"]] * 2 + [
        ["bug", "enhancement", "Customer-Escalation"]
    ]


@responses.activate
def test_no_label_existing_never_fails_the_create(fixtures_dir):
    add_repo(REPO, public=False)
    responses.add(responses.GET, f"{API}/repos/{REPO}/labels", json=[])
    responses.add(responses.POST, f"{API}/repos/{REPO}/issues", status=201, json=recorded_created_issue(fixtures_dir))
    make([REPO], mutation_interval=0).create_issue(REPO, DRAFT, KEY)
    (sent,) = posts()
    assert "labels" not in sent


@responses.activate
def test_labels_are_read_through_their_pages(fixtures_dir):
    mock_create(fixtures_dir)
    responses.replace(
        responses.GET,
        f"{API}/repos/{REPO}/labels",
        json=[{"name": "bug"}],
        headers={"Link": f'<{API}/repositories/5/labels?per_page=100&page=2>; rel="next"'},
    )
    responses.add(responses.GET, f"{API}/repositories/5/labels", json=[{"name": "customer-escalation"}])
    make([REPO], mutation_interval=0).create_issue(REPO, DRAFT, KEY)
    assert posts()[0]["labels"] == ["bug", "customer-escalation"]


@responses.activate
def test_an_old_recorded_create_answer_is_read_too(fixtures_dir):
    """PyGithub's 2012 recording: ``pull_request`` with null URLs on a plain issue."""
    (recorded,) = replay(fixtures_dir, "Repository.testCreateIssue")
    add_repo("PyGithub/PyGithub", public=True)
    responses.add(responses.POST, f"{API}{recorded['path']}", status=recorded["status"], body=recorded["body"])
    result = make(["PyGithub/PyGithub"], mutation_interval=0).create_issue(
        "PyGithub/PyGithub", IssueDraft(title="Issue created by PyGithub", body="Ticket `a1b2c3`"), KEY
    )
    assert result.id == str(json.loads(recorded["body"])["id"])
    assert paths() == ["GET /repos/PyGithub/PyGithub", "POST /repos/PyGithub/PyGithub/issues"]  # no labels asked


@responses.activate
def test_a_public_repository_refuses_a_draft_with_personal_data_before_sending(fixtures_dir):
    mock_create(fixtures_dir, public=True)
    c = make([REPO], mutation_interval=0)
    for draft in (
        IssueDraft(title="Login fails", body="Reported by jane.doe@customer.example"),
        IssueDraft(title="jane.doe@customer.example cannot log in", body="x"),
    ):
        with pytest.raises(PublicRepositoryRefused) as err:
            c.create_issue(REPO, draft, KEY)
        assert REPO in str(err.value) and "jane" not in str(err.value)
    assert posts() == []
    c.create_issue(REPO, IssueDraft(title="Login fails", body="Support ticket `4f2a9c0d1e3b`, 3 customers"), KEY)
    assert len(posts()) == 1


@responses.activate
def test_visibility_is_checked_again_before_each_create(fixtures_dir):
    """A repository turned public since the last look must not get the handoff."""
    mock_create(fixtures_dir)
    c = make([REPO], mutation_interval=0)
    assert c.is_private(REPO) is True
    responses.replace(
        responses.GET, f"{API}/repos/{REPO}", json={"private": False, "visibility": "public"}, headers={"ETag": '"2"'}
    )
    with pytest.raises(PublicRepositoryRefused):
        c.create_issue(REPO, IssueDraft(title="t", body="from jane@x.example"), KEY)
    assert c.is_private(REPO) is False


@responses.activate
def test_an_unknown_repository_is_named_with_what_to_do():
    responses.add(responses.GET, f"{API}/repos/acme/gone", status=404, json={"message": "Not Found"})
    c = make(["acme/web"], mutation_interval=0)
    for call in (lambda: c.create_issue("acme/gone", DRAFT, KEY), lambda: c.is_private("acme/gone")):
        with pytest.raises(NotFound) as err:
            call()
        assert "acme/gone" in str(err.value) and "route" in str(err.value)
    with pytest.raises(NotFound) as err:
        c.create_issue("not a repo", DRAFT, KEY)
    assert "owner/name" in str(err.value)
    assert posts() == []


@responses.activate
@pytest.mark.parametrize(
    "status,body,error,words",
    [
        (410, {"message": "Issues are disabled for this repo"}, Gone, "issues turned off"),
        (403, {"message": "Resource not accessible by personal access token"}, AuthError, "write access"),
        (404, {"message": "Not Found"}, NotFound, "does not exist"),
        (422, {"message": "Validation Failed"}, Conflict, "Validation Failed"),
        (301, {"message": "Moved Permanently"}, NotFound, "has moved"),
    ],
)
def test_refusals_of_the_create_map_to_syncd_errors(fixtures_dir, status, body, error, words):
    add_repo(REPO, public=False)
    responses.add(
        responses.POST,
        f"{API}/repos/{REPO}/issues",
        status=status,
        json=body,
        headers={"Location": f"{API}/repositories/9/issues"} if status == 301 else {},
    )
    with pytest.raises(error) as err:
        make([REPO], mutation_interval=0).create_issue(REPO, IssueDraft(title="t", body="b"), KEY)
    assert words in str(err.value) and REPO in str(err.value)
    assert len(posts()) == 1  # a write is never repeated on its own


@responses.activate
@pytest.mark.parametrize("answer", ["<html>Bad gateway</html>", json.dumps({"id": 1})])
def test_an_unreadable_create_answer_is_a_payload_error(answer):
    add_repo(REPO, public=False)
    responses.add(responses.POST, f"{API}/repos/{REPO}/issues", status=201, body=answer)
    with pytest.raises(PayloadError):
        make([REPO], mutation_interval=0).create_issue(REPO, IssueDraft(title="t", body="b"), KEY)
    assert len(posts()) == 1


@responses.activate
def test_a_title_longer_than_github_takes_is_shortened(fixtures_dir):
    mock_create(fixtures_dir)
    c = make([REPO], mutation_interval=0)
    c.create_issue(REPO, IssueDraft(title="x" * 300, body="b"), KEY)
    c.create_issue(REPO, IssueDraft(title="word " * 60, body="b"), KEY)
    first, second = (p["title"] for p in posts())
    assert first == "x" * 255 + "…"
    assert len(second) <= 256 and second.endswith("word…")


@responses.activate
def test_an_empty_title_is_refused_without_a_request():
    with pytest.raises(Conflict):
        make([REPO], mutation_interval=0).create_issue(REPO, IssueDraft(title=" \n", body="b"), KEY)
    assert len(responses.calls) == 0


# -- find_created -------------------------------------------------------------------


def listing(*bodies: str, repo: str = REPO) -> list[dict]:
    """Issues newest first, as the list answers with sort=created&direction=desc."""
    out = []
    for n, body in enumerate(bodies):
        item = issue_body(100 - n, repo=repo)
        item["body"] = body
        out.append(item)
    return out


@responses.activate
def test_find_created_lists_syncds_newest_issues_and_matches_the_hidden_marker():
    responses.add(responses.GET, f"{API}/user", json={"login": "syncd-bot"})
    pr = listing(f"<!-- {marker_token(KEY)} -->")[0] | {"pull_request": {"html_url": "https://github.com/x/pull/1"}}
    responses.add(
        responses.GET,
        f"{API}/repos/{REPO}/issues",
        json=[pr]
        + listing(
            f"quoting syncd:{KEY} in prose",
            f"x\n\n<!-- {marker_token(OTHER)} -->\n",
            f"y\n\n<!-- {marker_token(KEY)} -->\n",
        ),
    )
    c = make([REPO])
    found = c.find_created(REPO, KEY)
    assert found == str(issue_body(98)["id"])  # the third: only a hidden marker in an issue counts
    assert c._locate(found).key == f"{REPO}#98"
    assert c.find_created(REPO, "0" * 20) is None
    feed = [x for x in responses.calls if urlsplit(x.request.url).path.endswith("/issues")]
    assert parse_qs(urlsplit(feed[0].request.url).query) == {
        "creator": ["syncd-bot"],
        "state": ["all"],
        "sort": ["created"],
        "direction": ["desc"],
        "per_page": ["100"],
    }
    assert paths("GET").count("GET /user") == 1  # the login is asked once per process
    assert "search" not in " ".join(paths())


@responses.activate
def test_find_created_uses_the_login_check_learned():
    responses.add(responses.GET, f"{API}/user", json={"login": "helpdesk-sync"})
    add_repo(REPO, public=False)
    responses.add(responses.GET, f"{API}/repos/{REPO}/issues", json=[])
    c = make([REPO])
    c.check()
    assert c.find_created(REPO, KEY) is None
    assert paths("GET").count("GET /user") == 1
    assert parse_qs(urlsplit(responses.calls[-1].request.url).query)["creator"] == ["helpdesk-sync"]


@responses.activate
def test_find_created_in_an_unknown_repository_says_which():
    responses.add(responses.GET, f"{API}/user", json={"login": "syncd-bot"})
    responses.add(responses.GET, f"{API}/repos/acme/gone/issues", status=404, json={"message": "Not Found"})
    with pytest.raises(NotFound) as err:
        make(["acme/web"]).find_created("acme/gone", KEY)
    assert "acme/gone" in str(err.value) and "route" in str(err.value)


@responses.activate
def test_a_lost_create_answer_is_found_and_not_created_again(fixtures_dir):
    """Crash-style: the POST arrives, its answer is lost; the retry path looks first."""
    add_repo(REPO, public=False)
    responses.add(responses.GET, f"{API}/repos/{REPO}/labels", json=recorded_labels(fixtures_dir))
    responses.add(
        responses.POST, f"{API}/repos/{REPO}/issues", body=requests.exceptions.ChunkedEncodingError("connection broken")
    )
    c = make([REPO], mutation_interval=0)
    with pytest.raises(TransientError) as err:
        c.create_issue(REPO, DRAFT, KEY)
    assert err.value.maybe_applied is True
    assert len(posts()) == 1  # the HTTP layer did not send it again by itself
    sent = posts()[0]
    # What GitHub stored: the body as sent. A new process asks before sending again.
    stored = listing(sent["body"])
    responses.add(responses.GET, f"{API}/user", json={"login": "syncd-bot"})
    responses.add(responses.GET, f"{API}/repos/{REPO}/issues", json=stored)
    after_restart = make([REPO], mutation_interval=0)
    assert after_restart.find_created(REPO, KEY) == str(stored[0]["id"])
    assert after_restart.find_created(REPO, OTHER) is None
    assert len(posts()) == 1


# -- is_private and the slots of upsert_comment -----------------------------------------------


@responses.activate
def test_is_private_is_the_cached_opposite_of_is_public():
    add_repo("acme/web", public=False)
    add_repo("acme/sdk", public=True)
    c = make(["acme/web", "acme/sdk"])
    assert c.is_private("acme/web") is True and c.is_private("acme/sdk") is False
    assert c.is_private("acme/web") is True
    assert len(responses.calls) == 2


@responses.activate
def test_an_equal_text_under_a_new_key_is_not_written_again():
    add_repo("acme/web", public=False)
    text = f"**Demand**: 3 tickets\n\n<!-- syncd:demand -->\n<!-- {marker_token(KEY)} -->\n"
    responses.add(
        responses.GET,
        f"{API}/repos/acme/web/issues/1/comments",
        json=[
            {
                "id": 8,
                "body": text,
                "user": {"login": "syncd-bot"},
                "issue_url": f"{API}/repos/acme/web/issues/1",
                "updated_at": "2024-05-01T10:00:00Z",
            }
        ],
    )
    responses.add(
        responses.PATCH,
        f"{API}/repos/acme/web/issues/comments/8",
        json={"id": 8, "issue_url": f"{API}/repos/acme/web/issues/1", "updated_at": "2024-05-02T10:00:00Z"},
    )
    c = make(mutation_interval=0)
    result = c.upsert_comment("acme/web#1", "**Demand**: 3 tickets", OTHER, "demand")
    assert result.id == "8" and result.updated_at.day == 1
    assert paths("PATCH") == []
    c.upsert_comment("acme/web#1", "**Demand**: 4 tickets", OTHER, "demand")
    (patched,) = [json.loads(x.request.body)["body"] for x in responses.calls if x.request.method == "PATCH"]
    assert "4 tickets" in patched and marker_token(OTHER) in patched and marker_token(KEY) not in patched
