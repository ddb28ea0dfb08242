"""GitHub connector against ``responses`` mocks, fed with real recordings.

Recordings come from ../shared/fixtures/github: octokit's normalized fixtures
(JSON arrays of {scope, method, path, status, response, headers}) and
PyGithub's ReplayData (10-line blocks: scheme, verb, host, port, path,
request headers, request body, status, response headers, response body).
"""

from __future__ import annotations

import ast
import json
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from pydantic import ValidationError

from connectors.github.connector import (
    GitHubConfig,
    GitHubConnector,
    PublicRepositoryRefused,
    native_of,
    state_of,
    ticket_hash,
)
from syncd.errors import AuthError, ConfigError, Gone, NotFound, RateLimited, TransientError
from syncd.records import StateCategory

API = "https://api.github.com"
TOKEN = "ghp_test_token_never_shown"
KEY_A = "a" * 20
KEY_B = "b" * 20


# -- recordings -------------------------------------------------------------------


def octokit(fixtures_dir: Path, name: str) -> list[dict]:
    path = fixtures_dir / "github" / "octokit-fixtures" / f"{name}.normalized-fixture.json"
    return json.loads(path.read_text())


def replay(fixtures_dir: Path, name: str) -> list[dict]:
    """The interactions of a PyGithub ReplayData file."""
    lines = (fixtures_dir / "github" / "pygithub-replaydata" / f"{name}.txt").read_text().split("\n")
    out = []
    for start in range(0, len(lines) - 9, 11):
        block = lines[start : start + 10]
        out.append(
            {
                "method": block[1],
                "path": block[4],
                "request_headers": ast.literal_eval(block[5]),
                "request_body": None if block[6] == "None" else block[6],
                "status": int(block[7]),
                "headers": dict(ast.literal_eval(block[8])),
                "body": block[9],
            }
        )
    return out


def response_headers(recorded: dict) -> dict[str, str]:
    keep = ("etag", "link", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after")
    return {k: v for k, v in recorded.items() if k.lower() in keep}


# -- helpers ----------------------------------------------------------------------


class Sleeps(list):
    """Records each wait; moves ``clock`` on by it, as a real wait would."""

    def __init__(self, clock: "Clock | None" = None):
        super().__init__()
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if self.clock is not None:
            self.clock.now += seconds


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, timezone.utc)


def make(repos=("acme/web",), *, sleeps=None, clock=None, **extra) -> GitHubConnector:
    config = GitHubConfig(kind="github", token=TOKEN, repositories=list(repos), **extra)
    return GitHubConnector(
        "gh", config, sleep=sleeps if sleeps is not None else Sleeps(), clock=(clock or Clock()).datetime
    )


def repo_body(full_name: str, public: bool) -> dict:
    return {"id": 1, "full_name": full_name, "private": not public, "visibility": "public" if public else "private"}


def add_repo(full_name: str, public: bool, etag: str = '"repo-etag"') -> None:
    responses.add(responses.GET, f"{API}/repos/{full_name}", json=repo_body(full_name, public), headers={"ETag": etag})


def issue_body(
    number: int,
    repo: str = "acme/web",
    *,
    updated: str = "2024-05-01T10:00:00Z",
    state: str = "open",
    reason: str | None = None,
    assignee: str | None = None,
    ident: int | None = None,
) -> dict:
    return {
        "id": ident or 9000 + number,
        "node_id": "I_x",
        "number": number,
        "title": f"Issue {number}",
        "url": f"{API}/repos/{repo}/issues/{number}",
        "repository_url": f"{API}/repos/{repo}",
        "html_url": f"https://github.com/{repo}/issues/{number}",
        "state": state,
        "state_reason": reason,
        "assignee": {"login": assignee} if assignee else None,
        "assignees": [{"login": assignee}] if assignee else [],
        "created_at": "2024-04-01T00:00:00Z",
        "updated_at": updated,
        "closed_at": None,
        "labels": [],
        "comments": 0,
        "user": {"login": "someone"},
        "body": "text",
    }


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


# -- config -----------------------------------------------------------------------


def test_config_requires_a_token_and_names_the_variable():
    with pytest.raises(ValidationError) as err:
        GitHubConfig(kind="github", repositories=["acme/web"])
    assert "SYNCD_CONNECTORS__<NAME>__TOKEN" in str(err.value)


@pytest.mark.parametrize("repos", [[], ["acme"], ["acme/web/extra"], ["acme/web", "ACME/web"], ["a b/c"]])
def test_config_rejects_bad_repository_lists(repos):
    with pytest.raises(ValidationError) as err:
        GitHubConfig(kind="github", token="t", repositories=repos)
    assert "repositories" in str(err.value)


def test_token_file_is_read_and_an_empty_one_is_a_clear_error(tmp_path):
    (tmp_path / "tok").write_text("\n")
    with pytest.raises(ConfigError) as err:
        GitHubConnector("gh", GitHubConfig(kind="github", token_file=str(tmp_path / "tok"), repositories=["a/b"]))
    assert "SYNCD_CONNECTORS__GH__TOKEN" in str(err.value)
    (tmp_path / "tok").write_text("secret-from-file\n")
    c = GitHubConnector("gh", GitHubConfig(kind="github", token_file=str(tmp_path / "tok"), repositories=["a/b"]))
    assert c.http.session.headers["Authorization"] == "Bearer secret-from-file"


# -- check, auth and headers --------------------------------------------------------


@responses.activate
def test_check_reports_login_and_visibility_with_github_headers(fixtures_dir):
    user = replay(fixtures_dir, "Exceptions.testUnknownObject")[0]
    responses.add(
        responses.GET, f"{API}/user", body=user["body"], status=200, headers=response_headers(user["headers"])
    )
    add_repo("acme/web", public=False)
    add_repo("acme/sdk", public=True)
    c = make(["acme/web", "acme/sdk"])
    assert c.check() == "jacquev6 (acme/web private, acme/sdk public)"
    for call in responses.calls:
        h = call.request.headers
        assert h["Accept"] == "application/vnd.github+json"
        assert h["X-GitHub-Api-Version"] == "2022-11-28"
        assert h["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_bad_credentials_raise_auth_error_without_the_token(fixtures_dir):
    bad = replay(fixtures_dir, "Exceptions.testBadAuthentication")[0]
    responses.add(responses.GET, f"{API}/user", body=bad["body"], status=bad["status"])
    with pytest.raises(AuthError) as err:
        make().check()
    assert "Bad credentials" in str(err.value)
    assert TOKEN not in str(err.value)


@responses.activate
def test_check_names_a_missing_repository(fixtures_dir):
    user, missing = replay(fixtures_dir, "Exceptions.testUnknownObject")[:2]
    responses.add(responses.GET, f"{API}/user", body=user["body"])
    responses.add(responses.GET, f"{API}{missing['path']}", body=missing["body"], status=404)
    with pytest.raises(NotFound) as err:
        make(["jacquev6/Xxx"]).check()
    assert "jacquev6/Xxx" in str(err.value) and "connectors.gh.repositories" in str(err.value)


# -- normalisation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "state,reason,assignee,category,name",
    [
        ("open", None, None, StateCategory.UNSTARTED, "Open"),
        ("open", None, "dev", StateCategory.STARTED, "Open"),
        ("open", "reopened", None, StateCategory.UNSTARTED, "Open (reopened)"),
        ("closed", "completed", "dev", StateCategory.COMPLETED, "Closed (completed)"),
        ("closed", None, None, StateCategory.COMPLETED, "Closed"),
        ("closed", "not_planned", None, StateCategory.CANCELED, "Closed (not planned)"),
        ("closed", "duplicate", None, StateCategory.CANCELED, "Closed (duplicate)"),
    ],
)
def test_state_mapping(state, reason, assignee, category, name):
    assert state_of(issue_body(1, state=state, reason=reason, assignee=assignee)) == (category, name)


@pytest.mark.parametrize(
    "item, expected",
    [
        ({"state": "closed", "state_reason": "not_planned"}, {"state": "closed", "reason": "not_planned"}),
        ({"state": "closed", "state_reason": "duplicate"}, {"state": "closed", "reason": "duplicate"}),
        ({"state": "closed", "state_reason": "completed"}, {"state": "closed", "reason": "completed"}),
        ({"state": "open", "state_reason": "reopened"}, {"state": "open", "reason": "reopened"}),
        ({"state": "open", "state_reason": None}, {"state": "open", "reason": None}),
    ],
)
def test_github_state_reason_is_recovered_from_what_the_connector_records(item, expected):
    assert native_of(item) == expected


def test_the_issue_carries_githubs_own_state_words():
    issue = make()._issue(issue_body(1, state="closed", reason="not_planned"), public=False)
    assert issue.native == {"state": "closed", "reason": "not_planned"}
    assert GitHubConnector.state_rule_model.conditions() == tuple(issue.native)


@responses.activate
@pytest.mark.parametrize(
    "recording,category,state_name,resolution",
    [
        ("Issue.testEditWithStateReasonNotPlanned", StateCategory.CANCELED, "Closed (not planned)", "not_planned"),
        ("Issue.testEditWithStateReasonReopened", StateCategory.STARTED, "Open (reopened)", "reopened"),
    ],
)
def test_get_issue_normalises_recorded_payloads(fixtures_dir, recording, category, state_name, resolution):
    recorded = replay(fixtures_dir, recording)[0]
    responses.add(responses.GET, f"{API}/repos/PyGithub/PyGithub/issues/28", body=recorded["body"])
    add_repo("PyGithub/PyGithub", public=True)
    issue = make(["PyGithub/PyGithub"]).get_issue("PyGithub/PyGithub#28")
    assert issue.ref.id == "4653757"
    assert issue.key == "PyGithub/PyGithub#28"
    assert issue.url == "https://github.com/PyGithub/PyGithub/issues/28"
    assert (issue.state, issue.state_name, issue.resolution) == (category, state_name, resolution)
    assert issue.assignee == "jacquev6"
    assert issue.team == "PyGithub/PyGithub"
    assert issue.public is True


@responses.activate
def test_get_issue_by_url_and_by_known_id():
    add_repo("acme/web", public=False)
    responses.add(responses.GET, f"{API}/repos/acme/web/issues/7", json=issue_body(7))
    c = make()
    assert c.get_issue("https://github.com/acme/web/issues/7").key == "acme/web#7"
    assert c.get_issue("9007").key == "acme/web#7"
    with pytest.raises(NotFound) as err:
        c.get_issue("123456")
    assert "owner/repo#n" in str(err.value)


@responses.activate
def test_an_unseen_id_is_resolved_through_the_engines_key_lookup():
    add_repo("acme/web", public=False)
    responses.add(
        responses.POST,
        f"{API}/repos/acme/web/issues/7/comments",
        status=201,
        json={"id": 1, "updated_at": "2024-05-01T10:00:00Z"},
    )
    c = make(mutation_interval=0)
    c.key_lookup = {"9007": "acme/web#7"}.get
    assert c.add_comment("9007", "hello", KEY_A).id == "1"
    with pytest.raises(NotFound):
        c.add_comment("9008", "hello", KEY_A)


def test_link_patterns_find_urls_and_short_refs_of_configured_repos():
    import re

    c = make(["acme/web"])
    text = (
        "see https://github.com/acme/web/issues/12 and acme/web#34, not other/repo#5 "
        "nor https://github.com/acme/web/pull/3"
    )
    found = [c.normalise_ref(m["ref"]) for p in c.link_patterns() for m in re.finditer(p, text)]
    assert sorted(found) == ["acme/web#12", "acme/web#34"]
    ghe = make(["acme/web"], url="https://git.example.com/api/v3")
    assert any(re.search(p, "https://git.example.com/acme/web/issues/9") for p in ghe.link_patterns())


def test_every_form_of_an_issues_key_and_url_normalises_to_the_stored_key():
    c = make(["Acme/Web"])
    for text in ("Acme/Web#12", "acme/web#12", "acme/web/issues/12", "https://github.com/ACME/web/issues/12/"):
        assert c.normalise_ref(text) == "Acme/Web#12", text
    assert c.normalise_ref("other/repo/issues/5") == "other/repo#5"  # not followed: as written


# -- the feed ---------------------------------------------------------------------


@responses.activate
def test_poll_follows_link_pages_from_a_real_recording(fixtures_dir):
    recorded = octokit(fixtures_dir, "paginate-issues")
    repo = "octokit-fixture-org/paginate-issues"
    add_repo(repo, public=True)
    for i, interaction in enumerate(recorded):
        url = f"{API}{interaction['path'].split('?')[0]}"
        matchers = []
        if i:  # later pages: exactly the URL of the recorded Link header
            params = {k: v[0] for k, v in parse_qs(urlsplit(interaction["path"]).query).items()}
            matchers = [responses.matchers.query_param_matcher(params)]
        responses.add(
            responses.GET,
            url,
            json=interaction["response"],
            match=matchers,
            headers=response_headers(interaction["headers"]),
        )
    c = make([repo])
    pages = list(c.poll(None))
    assert [len(p.records) for p in pages] == [3, 3, 3, 3, 1]
    assert [p.done for p in pages] == [False, False, False, False, True]
    numbers = [r.key.split("#")[1] for p in pages for r in p.records]
    assert numbers == [str(n) for n in range(13, 0, -1)]
    first = pages[0].records[0]
    assert first.url == "https://github.com/octokit-fixture-org/paginate-issues/issues/13"
    assert first.public is True and first.state is StateCategory.UNSTARTED
    feed = [call for call in responses.calls if "/issues" in call.request.url]
    assert query(feed[0]) == {
        "state": ["all"],
        "since": ["2023-10-15T22:13:20Z"],
        "sort": ["updated"],
        "direction": ["asc"],
        "per_page": ["100"],
    }
    # Mid-read cursors hold the next page; the last one moves since to the high-water mark - overlap.
    middle = json.loads(pages[1].cursor)["repos"][repo]
    assert middle["next"].endswith("/repositories/1000/issues?per_page=3&page=3")
    final = json.loads(pages[-1].cursor)["repos"][repo]
    # The recording is older than the backfill window: since stays where the window began.
    assert "next" not in final and final["since"] == "2023-10-15T22:13:20Z"


@responses.activate
def test_an_interrupted_read_resumes_at_the_stored_next_page(fixtures_dir):
    recorded = octokit(fixtures_dir, "paginate-issues")
    repo = "octokit-fixture-org/paginate-issues"
    add_repo(repo, public=True)
    last = recorded[-1]
    responses.add(
        responses.GET,
        f"{API}/repositories/1000/issues",
        json=last["response"],
        headers=response_headers(last["headers"]),
    )
    cursor = json.dumps(
        {
            "v": 1,
            "repos": {
                repo: {
                    "since": "2017-10-01T00:00:00Z",
                    "next": f"{API}/repositories/1000/issues?per_page=3&page=5",
                    "hwm": "2017-10-10T16:00:00Z",
                }
            },
        }
    )
    pages = list(make([repo]).poll(cursor))
    assert [r.key for p in pages for r in p.records] == [f"{repo}#1"]
    feed = [c for c in responses.calls if "/issues" in c.request.url]
    assert len(feed) == 1 and query(feed[0]) == {"per_page": ["3"], "page": ["5"]}
    assert json.loads(pages[-1].cursor)["repos"][repo]["since"] == "2017-10-10T15:59:55Z"


@responses.activate
def test_idle_poll_is_a_conditional_request_answered_304(fixtures_dir):
    setup = replay(fixtures_dir, "ConditionalRequestUpdate.setUp")[0]
    not_modified = replay(fixtures_dir, "ConditionalRequestUpdate.testDidNotUpdate")[0]
    etag = setup["headers"]["etag"]
    add_repo("acme/web", public=False)
    responses.add(responses.GET, f"{API}/repos/acme/web/issues", json=[], headers={"ETag": etag})
    responses.add(
        responses.GET,
        f"{API}/repos/acme/web/issues",
        status=not_modified["status"],
        headers=response_headers(not_modified["headers"]),
    )
    c = make()
    (page,) = list(c.poll(None))
    assert page.records == [] and page.done
    assert json.loads(page.cursor)["repos"]["acme/web"]["etag"] == etag
    responses.calls.reset()
    (idle,) = list(c.poll(page.cursor))
    assert idle.records == [] and idle.done
    # Visibility is cached (TTL), so the idle cycle is that one free request.
    assert len(responses.calls) == 1
    assert responses.calls[0].request.headers["If-None-Match"] == etag
    assert json.loads(idle.cursor) == json.loads(page.cursor)


@responses.activate
def test_the_poll_after_a_change_is_still_conditional_when_one_page_held_the_listing():
    """A change read in one page keeps ``since`` (and so the URL): that answer's ETag is the
    next poll's validator, and an idle poll after a change is a 304, not a full 200."""
    add_repo("acme/web", public=False)
    since = "2024-05-01T00:00:00Z"
    changed = [issue_body(1, updated="2024-05-01T10:00:00Z"), issue_body(2, updated="2024-05-01T10:00:09Z")]
    responses.add(responses.GET, f"{API}/repos/acme/web/issues", json=changed, headers={"ETag": 'W/"2"'})
    responses.add(responses.GET, f"{API}/repos/acme/web/issues", status=304, headers={"ETag": 'W/"2"'})
    c = make()
    cursor = json.dumps({"v": 1, "repos": {"acme/web": {"since": since, "etag": 'W/"1"'}}})
    pages = list(c.poll(cursor))
    assert [r.key for p in pages for r in p.records] == ["acme/web#1", "acme/web#2"]
    kept = json.loads(pages[-1].cursor)["repos"]["acme/web"]
    assert kept["since"] == since and kept["etag"] == 'W/"2"'
    (idle,) = list(c.poll(pages[-1].cursor))
    assert idle.records == []
    feed = [call for call in responses.calls if "/issues" in call.request.url]
    assert [call.request.headers.get("If-None-Match") for call in feed] == ['W/"1"', 'W/"2"']
    assert query(feed[1])["since"] == [since]  # the same URL: the validator applies
    assert feed[1].response.status_code == 304


@responses.activate
def test_a_page_spanning_seconds_continues_by_since_not_by_page_number():
    add_repo("acme/web", public=False)
    first = [issue_body(1, updated="2024-05-01T10:00:00Z"), issue_body(2, updated="2024-05-01T10:00:09Z")]
    second = [issue_body(2, updated="2024-05-01T10:00:09Z"), issue_body(3, updated="2024-05-01T10:00:20Z")]
    responses.add(
        responses.GET,
        f"{API}/repos/acme/web/issues",
        json=first,
        headers={"Link": f'<{API}/repositories/1/issues?page=2>; rel="next"'},
    )
    responses.add(responses.GET, f"{API}/repos/acme/web/issues", json=second)
    pages = list(make().poll(json.dumps({"v": 1, "repos": {"acme/web": {"since": "2024-05-01T00:00:00Z"}}})))
    keys = [r.key for p in pages for r in p.records]
    assert keys == ["acme/web#1", "acme/web#2", "acme/web#3"]  # #2 read twice, emitted once
    feed = [c for c in responses.calls if "/issues" in c.request.url]
    assert query(feed[1])["since"] == ["2024-05-01T10:00:08Z"]
    assert json.loads(pages[-1].cursor)["repos"]["acme/web"]["since"] == "2024-05-01T10:00:15Z"


@responses.activate
def test_pull_requests_are_skipped_unless_configured(fixtures_dir):
    recorded = next(
        r
        for r in replay(fixtures_dir, "AuthenticatedUser.testGetIssuesWithAllArguments")
        if r["path"].startswith("/issues?sort=comments")
    )
    add_repo("acme/web", public=False)
    responses.add(responses.GET, f"{API}/repos/acme/web/issues", body=recorded["body"])
    items = json.loads(recorded["body"])
    prs = sum(1 for i in items if (i.get("pull_request") or {}).get("html_url"))
    skipped = [r for p in make().poll(None) for r in p.records]
    assert len(skipped) == len(items) - prs and prs > 0
    included = [r for p in make(include_pull_requests=True).poll(None) for r in p.records]
    assert len(included) == len(items)


@responses.activate
def test_malformed_items_are_rejected_and_the_page_goes_on():
    add_repo("acme/web", public=False)
    broken = issue_body(2)
    del broken["title"]
    responses.add(responses.GET, f"{API}/repos/acme/web/issues", json=[issue_body(1), broken, "junk"])
    (page,) = list(make().poll(None))
    assert [r.key for r in page.records] == ["acme/web#1"]
    assert [r.record_id for r in page.rejected] == ["9002", None]
    assert "title" in page.rejected[0].reason


def test_unreadable_cursor_is_a_clear_error():
    with pytest.raises(ConfigError) as err:
        list(make().poll("not json"))
    assert "gh" in str(err.value) and "reset" in str(err.value)


@responses.activate
def test_visibility_is_cached_for_its_ttl_then_revalidated_with_its_etag(fixtures_dir):
    setup = replay(fixtures_dir, "ConditionalRequestUpdate.setUp")[0]
    not_modified = replay(fixtures_dir, "ConditionalRequestUpdate.testDidNotUpdate")[0]
    responses.add(
        responses.GET, f"{API}/repos/akfish/PyGithub", body=setup["body"], headers=response_headers(setup["headers"])
    )
    responses.add(
        responses.GET, f"{API}/repos/akfish/PyGithub", status=304, headers=response_headers(not_modified["headers"])
    )
    clock = Clock()
    c = make(["akfish/PyGithub"], clock=clock, visibility_ttl=600)
    assert c.is_public("akfish/PyGithub") is True  # a 2013 payload: "private": false only
    clock.now += 599
    assert c.is_public("akfish/PyGithub") is True
    assert len(responses.calls) == 1
    clock.now += 2
    assert c.is_public("akfish/PyGithub") is True
    assert len(responses.calls) == 2
    assert responses.calls[1].request.headers["If-None-Match"] == setup["headers"]["etag"]


@responses.activate
def test_a_repository_turning_public_is_noticed_after_the_ttl():
    responses.add(responses.GET, f"{API}/repos/acme/web", json=repo_body("acme/web", False), headers={"ETag": '"1"'})
    responses.add(responses.GET, f"{API}/repos/acme/web", json=repo_body("acme/web", True), headers={"ETag": '"2"'})
    responses.add(responses.GET, f"{API}/repos/acme/web/issues", json=[issue_body(1)])
    clock = Clock()
    c = make(clock=clock, visibility_ttl=60)
    (page,) = list(c.poll(None))
    assert page.records[0].public is False
    clock.now += 61
    (page,) = list(c.poll(page.cursor))
    assert page.records[0].public is True


# -- errors, moves and rate limits ------------------------------------------------------


@responses.activate
def test_transferred_issue_is_followed_to_its_new_key():
    moved_to = f"{API}/repositories/42/issues/3"
    responses.add(
        responses.GET,
        f"{API}/repos/acme/web/issues/7",
        status=301,
        json={"message": "Moved Permanently", "url": moved_to},
        headers={"Location": moved_to},
    )
    responses.add(responses.GET, moved_to, json=issue_body(3, repo="acme/sdk", ident=9007))
    add_repo("acme/sdk", public=False)
    issue = make(["acme/web", "acme/sdk"]).get_issue("acme/web#7")
    assert (issue.ref.id, issue.key, issue.team) == ("9007", "acme/sdk#3", "acme/sdk")


@responses.activate
def test_a_comment_on_a_transferred_issue_goes_to_its_new_place_once():
    moved_to = f"{API}/repositories/42/issues/3"
    add_repo("acme/web", public=False)
    responses.add(
        responses.POST,
        f"{API}/repos/acme/web/issues/7/comments",
        status=301,
        json={"message": "Moved Permanently"},
        headers={"Location": moved_to + "/comments"},
    )
    responses.add(responses.GET, f"{API}/repos/acme/web/issues/7", status=301, headers={"Location": moved_to})
    responses.add(responses.GET, moved_to, json=issue_body(3, repo="acme/sdk", ident=9007))
    add_repo("acme/sdk", public=False)
    responses.add(
        responses.POST,
        f"{API}/repos/acme/sdk/issues/3/comments",
        status=201,
        json={"id": 555, "body": "x", "updated_at": "2024-05-01T10:00:00Z"},
    )
    result = make(["acme/web", "acme/sdk"]).add_comment("acme/web#7", "Shipped in 2.1", KEY_A)
    assert result.id == "555"
    posts = [c for c in responses.calls if c.request.method == "POST"]
    assert [urlsplit(c.request.url).path for c in posts] == [
        "/repos/acme/web/issues/7/comments",
        "/repos/acme/sdk/issues/3/comments",
    ]
    assert json.loads(posts[1].request.body)["body"].endswith(f"<!-- syncd:{KEY_A} -->\n")
    # requests never turned the redirected POST into a GET of the comments list
    assert not any(c.request.method == "GET" and c.request.url.endswith("/comments") for c in responses.calls)


@responses.activate
def test_deleted_and_missing_issues_raise_once_without_retrying():
    responses.add(
        responses.GET, f"{API}/repos/acme/web/issues/8", status=410, json={"message": "This issue was deleted"}
    )
    responses.add(responses.GET, f"{API}/repos/acme/web/issues/9", status=404, json={"message": "Not Found"})
    responses.add(responses.GET, f"{API}/repos/other/place/issues/9", status=404, json={"message": "Not Found"})
    c = make()
    with pytest.raises(Gone):
        c.get_issue("acme/web#8")
    # A 404 for an issue of a followed repository: deleted, or hidden from the token.
    with pytest.raises(Gone, match="no longer visible"):
        c.get_issue("acme/web#9")
    # Elsewhere it says nothing about an issue syncd follows.
    with pytest.raises(NotFound) as caught:
        c.get_issue("other/place#9")
    assert not isinstance(caught.value, Gone)
    assert len(responses.calls) == 3


@responses.activate
def test_primary_rate_limit_403_waits_and_retries(fixtures_dir):
    ok, limited = replay(fixtures_dir, "SpecificExceptions.testRateLimitExceeded")[:2]
    add_repo("acme/web", public=False)
    responses.add(
        responses.GET,
        f"{API}/repos/acme/web/issues/1",
        status=limited["status"],
        body=limited["body"],
        headers={**response_headers(limited["headers"]), "x-ratelimit-reset": str(1_700_000_030)},
    )
    responses.add(responses.GET, f"{API}/repos/acme/web/issues/1", json=issue_body(1))
    clock = Clock()
    sleeps = Sleeps(clock)
    issue = make(sleeps=sleeps, clock=clock).get_issue("acme/web#1")
    assert issue.key == "acme/web#1"
    assert sleeps == [30.0]  # until x-ratelimit-reset, by the injected wall clock


@responses.activate
def test_secondary_rate_limit_honours_retry_after():
    add_repo("acme/web", public=False)
    responses.add(
        responses.POST,
        f"{API}/repos/acme/web/issues/1/comments",
        status=403,
        json={"message": "You have exceeded a secondary rate limit."},
        headers={"retry-after": "60"},
    )
    responses.add(
        responses.POST,
        f"{API}/repos/acme/web/issues/1/comments",
        status=201,
        json={"id": 1, "updated_at": "2024-05-01T10:00:00Z"},
    )
    sleeps = Sleeps()
    make(sleeps=sleeps, mutation_interval=0).add_comment("acme/web#1", "hello", KEY_A)
    assert sleeps == [60.0]


SECONDARY = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID ABCD:1234.",
    "documentation_url": "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
    "#about-secondary-rate-limits",
    "status": "403",
}
BUDGET_LEFT = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4990", "x-ratelimit-reset": "1700003000"}


@responses.activate
def test_secondary_rate_limit_without_retry_after_is_not_a_credentials_problem():
    add_repo("acme/web", public=False)
    comments = f"{API}/repos/acme/web/issues/1/comments"
    responses.add(responses.POST, comments, status=403, json=SECONDARY, headers=BUDGET_LEFT)
    responses.add(responses.POST, comments, status=201, json={"id": 1, "updated_at": "2024-05-01T10:00:00Z"})
    sleeps = Sleeps()
    result = make(sleeps=sleeps, mutation_interval=0).add_comment("acme/web#1", "hello", KEY_A)
    assert result.id == "1"
    assert sleeps == [60.0]  # at least a minute, as GitHub asks


@responses.activate
def test_a_403_that_is_not_a_rate_limit_is_still_refused_credentials():
    add_repo("acme/web", public=False)
    responses.add(
        responses.POST,
        f"{API}/repos/acme/web/issues/1/comments",
        status=403,
        headers=BUDGET_LEFT,
        json={"message": "Resource not accessible by personal access token"},
    )
    with pytest.raises(AuthError):
        make(mutation_interval=0).add_comment("acme/web#1", "hello", KEY_A)


@responses.activate
def test_repeated_secondary_limits_wait_longer_each_time_and_park_beyond_max_wait():
    add_repo("acme/web", public=False)
    issue = f"{API}/repos/acme/web/issues/1"
    for _ in range(3):
        responses.add(responses.GET, issue, status=403, json=SECONDARY, headers=BUDGET_LEFT)
    clock = Clock()
    sleeps = Sleeps(clock)
    c = make(sleeps=sleeps, clock=clock, max_wait=120)
    c.is_public("acme/web")
    start = clock.now
    with pytest.raises(RateLimited) as err:
        c.get_issue("acme/web#1")
    assert not isinstance(err.value, AuthError)
    assert sleeps == [60.0, 120.0]  # a minute, then twice that; 240 s is more than max_wait
    assert err.value.until.timestamp() == start + 60 + 120 + 240
    assert err.value.service == "GitHub" and "GitHub's rate limit" in str(err.value)
    sent = len(responses.calls)
    clock.now = start + 60 + 120 + 239  # a second before the end: nothing is sent
    with pytest.raises(RateLimited):
        c.get_issue("acme/web#1")
    assert len(responses.calls) == sent
    # After the wait, a fourth limit in a row asks for longer again; an answer ends the streak.
    clock.now += 1
    responses.add(responses.GET, issue, status=403, json=SECONDARY, headers=BUDGET_LEFT)
    with pytest.raises(RateLimited) as err:
        c.get_issue("acme/web#1")
    assert err.value.until.timestamp() == clock.now + 480
    clock.now += 480
    responses.add(responses.GET, issue, json=issue_body(1))
    responses.add(responses.GET, issue, status=403, json=SECONDARY, headers=BUDGET_LEFT)
    responses.add(responses.GET, issue, json=issue_body(1))
    c.get_issue("acme/web#1")
    del sleeps[:]
    c.get_issue("acme/web#1")
    assert sleeps == [60.0]


@responses.activate
def test_primary_limit_with_a_reset_beyond_max_wait_parks_until_the_reset(fixtures_dir):
    ok, limited = replay(fixtures_dir, "SpecificExceptions.testRateLimitExceeded")[:2]
    add_repo("acme/web", public=False)
    clock = Clock()
    reset = int(clock.now) + 3000
    responses.add(
        responses.GET,
        f"{API}/repos/acme/web/issues/1",
        status=limited["status"],
        body=limited["body"],
        headers={**response_headers(limited["headers"]), "x-ratelimit-reset": str(reset)},
    )
    sleeps = Sleeps(clock)
    c = make(sleeps=sleeps, clock=clock)
    with pytest.raises(RateLimited) as err:
        c.get_issue("acme/web#1")
    assert err.value.until.timestamp() == reset and sleeps == []  # no wait in place: the caller parks
    assert "nothing is sent to GitHub before" in str(err.value)
    sent = len(responses.calls)
    clock.now = reset - 1
    with pytest.raises(RateLimited):
        c.get_issue("acme/web#1")
    with pytest.raises(RateLimited):
        c.add_comment("acme/web#1", "hello", KEY_A)
    assert len(responses.calls) == sent  # never sent to before the reset
    clock.now = reset
    responses.add(responses.GET, f"{API}/repos/acme/web/issues/1", json=issue_body(1))
    assert c.get_issue("acme/web#1").key == "acme/web#1"


@responses.activate
def test_a_spent_budget_with_a_far_reset_holds_nothing_up_in_place_and_the_refusal_parks():
    add_repo("acme/web", public=False)
    clock = Clock()
    reset = int(clock.now) + 1800
    spent = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    responses.add(responses.GET, f"{API}/repos/acme/web/issues/1", json=issue_body(1), headers=spent)
    responses.add(
        responses.GET,
        f"{API}/repos/acme/web/issues/1",
        status=403,
        headers=spent,
        json={"message": "API rate limit exceeded for user ID 1."},
    )
    sleeps = Sleeps(clock)
    c = make(sleeps=sleeps, clock=clock)
    c.is_public("acme/web")  # known: the issue read is the last request the budget allowed
    c.get_issue("acme/web#1")
    with pytest.raises(RateLimited) as err:
        c.get_issue("acme/web#1")
    # No sleep of max_wait that would not reach the reset anyway (and would hold up the other connectors).
    assert err.value.until.timestamp() == reset and sleeps == []
    sent = len(responses.calls)
    with pytest.raises(RateLimited):
        c.get_issue("acme/web#1")
    assert len(responses.calls) == sent


@responses.activate
def test_mutations_are_spaced_by_the_mutation_interval():
    add_repo("acme/web", public=False)
    responses.add(
        responses.POST,
        f"{API}/repos/acme/web/issues/1/comments",
        status=201,
        json={"id": 1, "updated_at": "2024-05-01T10:00:00Z"},
    )
    sleeps = Sleeps()
    c = make(sleeps=sleeps, mutation_interval=1.0)
    c.add_comment("acme/web#1", "one", KEY_A)
    assert sleeps == []
    c.add_comment("acme/web#1", "two", KEY_B)
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 1.0


@responses.activate
def test_a_body_that_is_not_json_is_asked_for_again(fixtures_dir):
    html = replay(fixtures_dir, "Exceptions.testNonJsonDataReturnedByGithub")[0]["body"]
    responses.add(responses.GET, f"{API}/repos/acme/web/issues/1", body=html, status=200)
    responses.add(responses.GET, f"{API}/repos/acme/web/issues/1", json=issue_body(1))
    add_repo("acme/web", public=False)
    assert make().get_issue("acme/web#1").key == "acme/web#1"
    responses.add(responses.GET, f"{API}/repos/acme/web/issues/2", body=html, status=200)
    with pytest.raises(TransientError):
        make(max_attempts=2).get_issue("acme/web#2")


# -- writes and public repositories ---------------------------------------------------


@responses.activate
def test_customer_data_is_refused_in_a_public_repository_before_anything_is_sent():
    add_repo("acme/sdk", public=True)
    c = make(["acme/sdk"])
    with pytest.raises(PublicRepositoryRefused) as err:
        c.add_comment("acme/sdk#1", "Acme Corp reports...", KEY_A, customer_data=True)
    assert "acme/sdk" in str(err.value)
    with pytest.raises(PublicRepositoryRefused):
        c.add_comment("acme/sdk#1", "reported by jane@customer.example", KEY_A)
    with pytest.raises(PublicRepositoryRefused):
        c.upsert_comment("acme/sdk#1", "Acme Corp", KEY_A, customer_data=True)
    assert all(call.request.method == "GET" for call in responses.calls)


@responses.activate
def test_attach_ticket_in_a_public_repository_writes_only_an_opaque_reference():
    add_repo("acme/sdk", public=True)
    responses.add(responses.GET, f"{API}/repos/acme/sdk/issues/1/comments", json=[])
    responses.add(
        responses.POST,
        f"{API}/repos/acme/sdk/issues/1/comments",
        status=201,
        json={"id": 77, "updated_at": "2024-05-01T10:00:00Z"},
    )
    url = "https://acme.zendesk.com/agent/tickets/123"
    make(["acme/sdk"]).attach_ticket("acme/sdk#1", url, "Jane Doe cannot log in", "Acme Corp · jane@x.io", KEY_A)
    body = json.loads(responses.calls[-1].request.body)["body"]
    for secret in ("Jane", "Acme", "jane@", "zendesk", "123", "log in"):
        assert secret not in body
    assert ticket_hash(url) in body and "Linked support tickets: 1" in body
    assert "<!-- syncd:context -->" in body and f"<!-- syncd:{KEY_A} -->" in body


@responses.activate
def test_attach_ticket_in_a_private_repository_edits_the_one_context_comment():
    add_repo("acme/web", public=False)
    existing = (
        "Context from support\n\n<!-- syncd:tickets -->\n**Linked support tickets: 1**\n\n"
        "- [Old ticket](https://acme.zendesk.com/agent/tickets/1) <!-- syncd:t="
        f"{ticket_hash('https://acme.zendesk.com/agent/tickets/1')} -->\n<!-- /syncd:tickets -->\n\n"
        f"<!-- syncd:context -->\n<!-- syncd:{KEY_A} -->\n"
    )
    responses.add(
        responses.GET,
        f"{API}/repos/acme/web/issues/1/comments",
        json=[
            {"id": 5, "body": "a person's comment", "user": {"login": "dev"}},
            {"id": 6, "body": existing, "user": {"login": "syncd-bot"}, "issue_url": f"{API}/repos/acme/web/issues/1"},
        ],
    )
    responses.add(
        responses.PATCH,
        f"{API}/repos/acme/web/issues/comments/6",
        json={"id": 6, "updated_at": "2024-05-01T10:00:00Z", "issue_url": f"{API}/repos/acme/web/issues/1"},
    )
    make().attach_ticket("acme/web#1", "https://acme.zendesk.com/agent/tickets/2", "Login fails", "Acme", KEY_B)
    body = json.loads(responses.calls[-1].request.body)["body"]
    assert body.startswith("Context from support\n")
    assert "Linked support tickets: 2" in body
    assert "[Login fails](https://acme.zendesk.com/agent/tickets/2) — Acme" in body
    assert "[Old ticket]" in body
    assert f"<!-- syncd:{KEY_B} -->" in body and KEY_A not in body
    assert responses.calls[-1].request.method == "PATCH"


@responses.activate
def test_find_marker_reads_the_comments_through_their_pages():
    add_repo("acme/web", public=False)
    responses.add(
        responses.GET,
        f"{API}/repos/acme/web/issues/1/comments",
        json=[{"id": 1, "body": "hi"}],
        headers={"Link": f'<{API}/repositories/1/issues/1/comments?page=2>; rel="next"'},
    )
    responses.add(
        responses.GET,
        f"{API}/repositories/1/issues/1/comments",
        json=[{"id": 2, "body": f"done\n<!-- syncd:{KEY_A} -->"}],
    )
    c = make()
    assert c.find_marker("acme/web#1", KEY_A) is True
    assert c.find_marker("acme/web#1", KEY_B) is False


@responses.activate
def test_customer_data_does_not_follow_an_issue_moved_into_a_public_repository():
    moved_to = f"{API}/repositories/42/issues/3"
    add_repo("acme/web", public=False)
    add_repo("acme/sdk", public=True)
    responses.add(
        responses.POST,
        f"{API}/repos/acme/web/issues/7/comments",
        status=301,
        headers={"Location": moved_to + "/comments"},
    )
    responses.add(responses.GET, f"{API}/repos/acme/web/issues/7", status=301, headers={"Location": moved_to})
    responses.add(responses.GET, moved_to, json=issue_body(3, repo="acme/sdk", ident=9007))
    c = make(["acme/web", "acme/sdk"], mutation_interval=0)
    with pytest.raises(PublicRepositoryRefused) as err:
        c.add_comment("acme/web#7", "Acme Corp is waiting", KEY_A, customer_data=True)
    assert "acme/sdk" in str(err.value)
    assert [urlsplit(x.request.url).path for x in responses.calls if x.request.method == "POST"] == [
        "/repos/acme/web/issues/7/comments"
    ]


@responses.activate
def test_a_comment_without_a_creation_time_is_dated_by_the_apps_clock_not_the_machines():
    """The fallback for a missing created_at is the connector's clock (issue 9: no machine time)."""
    responses.get(
        f"{API}/repos/acme/web/issues/7/comments?per_page=100",
        json=[{"id": 1, "body": "hello", "user": {"login": "dev"}, "created_at": None}],
    )
    clock = Clock(1_700_000_000.0)
    [comment] = make(clock=clock).comments("acme/web#7")
    assert comment.created_at == clock.datetime()
