"""GitHub's comment feed (the conversation mirror) against ``responses``, fed with a real recording.

``GET /repos/{o}/{r}/issues/comments?since=&sort=updated&direction=asc``
after the repository's issues, only when the engine asks (``read_comments``);
the ETag makes an idle read a 304; ``since`` moves to the newest change read.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from tests.connectors.github.test_github import API, add_repo, make, replay

REPO = "PyGithub/PyGithub"
COMMENTS = f"{API}/repos/{REPO}/issues/comments"


def recorded_pages(fixtures_dir) -> list[dict]:
    """The recording's two pages of ``?since=2012-05-28T23:00:00Z``."""
    blocks = replay(fixtures_dir, "Repository.testGetIssuesComments")
    return [b for b in blocks if "since=" in b["path"]]


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


@responses.activate
def test_off_by_default_no_comment_request():
    add_repo(REPO, public=True)
    responses.add(responses.GET, f"{API}/repos/{REPO}/issues", json=[])
    pages = list(make((REPO,)).poll(None))
    assert all(p.remarks == [] for p in pages)
    assert not any("/issues/comments" in c.request.url for c in responses.calls)


@responses.activate
def test_the_feed_reads_changed_comments_page_by_page_then_idles_at_one_304(fixtures_dir):
    first, second = recorded_pages(fixtures_dir)
    add_repo(REPO, public=True)
    responses.add(responses.GET, f"{API}/repos/{REPO}/issues", json=[], headers={"ETag": '"i1"'})
    responses.add(
        responses.GET,
        COMMENTS,
        body=first["body"],
        content_type="application/json",
        headers={"ETag": '"c1"', "Link": f'<{API}/repositories/3544490/issues/comments?page=2>; rel="next"'},
    )
    responses.add(responses.GET, f"{API}/repositories/3544490/issues/comments", body=second["body"])
    c = make((REPO,))
    c.read_comments = True
    cursor = json.dumps({"v": 1, "repos": {REPO: {"since": "2012-05-28T23:00:00Z", "c_since": "2012-05-28T23:00:00Z"}}})
    pages = list(c.poll(cursor))
    remarks = [r for p in pages for r in p.remarks]
    raw = json.loads(first["body"]) + json.loads(second["body"])
    assert [r.id for r in remarks] == [str(x["id"]) for x in raw]
    one = remarks[0]
    assert one.issue_key == f"{REPO}#4793162" and one.issue_id is None
    assert one.author_name == "jacquev6" and not one.bot and not one.markers
    assert one.body.startswith("Add a test `Issue33.testClosedIssues`")
    feed = [call for call in responses.calls if "/issues/comments" in call.request.url]
    assert query(feed[0]) == {
        "since": ["2012-05-28T23:00:00Z"],
        "sort": ["updated"],
        "direction": ["asc"],
        "per_page": ["100"],
    }
    entry = json.loads(pages[-1].cursor)["repos"][REPO]
    newest = max(x["updated_at"] for x in raw)
    assert entry["c_since"] < newest and "c_next" not in entry and "c_etag" not in entry  # since moved on

    # Idle: one conditional request for the comments, answered 304, nothing read.
    entry["c_etag"] = '"c2"'
    responses.calls.reset()
    responses.replace(responses.GET, f"{API}/repos/{REPO}/issues", status=304)
    responses.replace(responses.GET, COMMENTS, status=304)
    idle = list(c.poll(json.dumps({"v": 1, "repos": {REPO: {**entry, "etag": '"i1"'}}})))
    assert [r for p in idle for r in p.remarks] == []
    comment_calls = [call for call in responses.calls if "/issues/comments" in call.request.url]
    assert len(comment_calls) == 1 and comment_calls[0].request.headers["If-None-Match"] == '"c2"'


@responses.activate
def test_bots_and_syncd_markers_are_read_as_such():
    add_repo("acme/web", public=False)
    responses.add(responses.GET, f"{API}/repos/acme/web/issues", json=[])
    body = [
        {
            "id": 1,
            "issue_url": f"{API}/repos/acme/web/issues/7",
            "html_url": "https://github.com/acme/web/issues/7#issuecomment-1",
            "body": "build passed",
            "user": {"login": "ci[bot]", "id": 9, "type": "Bot"},
            "created_at": "2024-05-01T10:00:00Z",
            "updated_at": "2024-05-01T10:00:00Z",
        },
        {
            "id": 2,
            "issue_url": f"{API}/repos/acme/web/issues/7",
            "body": "From support\n\n<!-- syncd:" + "a" * 20 + " -->",
            "user": {"login": "syncd-bot", "id": 5, "type": "User"},
            "created_at": "2024-05-01T10:00:01Z",
            "updated_at": "2024-05-01T10:00:01Z",
        },
        {"id": 3, "issue_url": "nonsense", "body": "x", "created_at": "bad", "updated_at": "bad"},
    ]
    responses.add(responses.GET, f"{API}/repos/acme/web/issues/comments", json=body)
    c = make()
    c.read_comments = True
    remarks = [r for p in c.poll(None) for r in p.remarks]
    assert [(r.id, r.bot, r.markers) for r in remarks] == [("1", True, ()), ("2", False, ("a" * 20,))]
    assert remarks[1].body == "From support"  # the hidden marker is not text a person reads
    assert remarks[0].url.endswith("#issuecomment-1")


@pytest.mark.parametrize("answer", [{"message": "oops"}, "not json"])
@responses.activate
def test_a_wrong_shaped_answer_is_an_error_not_a_silent_skip(answer):
    from syncd.errors import PayloadError, SyncdError

    add_repo("acme/web", public=False)
    responses.add(responses.GET, f"{API}/repos/acme/web/issues", json=[])
    if isinstance(answer, dict):
        responses.add(responses.GET, f"{API}/repos/acme/web/issues/comments", json=answer)
    else:
        responses.add(responses.GET, f"{API}/repos/acme/web/issues/comments", body=answer, status=200)
    c = make(max_attempts=1)
    c.read_comments = True
    with pytest.raises((PayloadError, SyncdError)):
        list(c.poll(None))
