"""GitHub: rewriting syncd's texts on an issue whose repository turned public (``make_opaque``)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import responses

from connectors.base import OpaqueRewrite, marker_token
from connectors.github.connector import GitHubConfig, GitHubConnector, ticket_hash

API = "https://api.github.com"
REPO = "acme/billing"
ISSUE = f"{API}/repos/{REPO}/issues/7"
CREATE_KEY = "c" * 20
KEY = "e" * 20
TICKET_URL = "https://acme.zendesk.com/agent/tickets/1017"
PRIVATE = {
    "title": "Invoice export drops VAT (Northwind Logistics)",
    "body": f"Escalated from support ticket Zendesk #1017: {TICKET_URL}\nCustomer: Northwind Logistics",
}
PUBLIC = {"title": "Customer report T-0123456789", "body": "Escalated from support (T-0123456789)"}
CONTEXT = (
    f"<!-- syncd:tickets -->\n**Linked support tickets: 1**\n\n"
    f"- [Invoice export drops VAT]({TICKET_URL}) — Northwind Logistics · open "
    f"<!-- syncd:t={ticket_hash(TICKET_URL)} -->\n<!-- /syncd:tickets -->\n\n"
    f"<!-- syncd:context -->\n<!-- syncd:{'a' * 20} -->\n"
)
DEMAND = (
    "Support demand: 1 ticket(s) from 1 organisation(s)\n- Northwind Logistics (enterprise)\n\n"
    f"<!-- syncd:demand -->\n<!-- syncd:{'b' * 20} -->\n"
)
OPAQUE_DEMAND = "Support demand: 1 ticket(s) from 1 organisation(s)"


def connector() -> GitHubConnector:
    config = GitHubConfig(kind="github", url=API, token="ghp_test", repositories=[REPO], mutation_interval=0)
    return GitHubConnector(
        "gh", config, sleep=lambda s: None, clock=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    )


def comment(
    ident: int,
    body: str,
    *,
    user: str = "syncd-bot",
    created: str = "2026-11-23T08:00:00Z",
    updated: str = "2026-11-23T08:00:00Z",
) -> dict:
    return {
        "id": ident,
        "node_id": f"IC_{ident}",
        "body": body,
        "user": {"login": user},
        "created_at": created,
        "updated_at": updated,
        "html_url": f"https://github.com/{REPO}/issues/7#issuecomment-{ident}",
        "issue_url": ISSUE,
    }


def created_issue(title: str, body: str) -> dict:
    return {
        "id": 907,
        "node_id": "I_907",
        "number": 7,
        "title": title,
        "body": body,
        "state": "open",
        "state_reason": None,
        "html_url": f"https://github.com/{REPO}/issues/7",
        "repository_url": f"{API}/repos/{REPO}",
        "updated_at": "2026-11-23T08:00:00Z",
        "assignee": None,
        "assignees": [],
    }


def with_marker(body: str, key: str = CREATE_KEY) -> str:
    return f"{body}\n\n<!-- {marker_token(key)} -->\n"


def rewrite(**written: str) -> OpaqueRewrite:
    return OpaqueRewrite(
        {"demand": OPAQUE_DEMAND}, dict(written), {"key": CREATE_KEY, "private": PRIVATE, "public": PUBLIC}
    )


def serve(comments: list[dict], issue: dict) -> None:
    responses.add(responses.GET, f"{API}/user", json={"login": "syncd-bot"})
    responses.add(responses.GET, f"{ISSUE}/comments", json=comments)
    responses.add(responses.GET, ISSUE, json=issue)

    def patched(request):
        body = json.loads(request.body)
        ident = int(request.url.rsplit("/", 1)[1])
        return 200, {}, json.dumps(comment(ident, body["body"], updated="2026-11-23T09:00:00Z"))

    responses.add_callback(responses.PATCH, f"{API}/repos/{REPO}/issues/comments/11", callback=patched)
    responses.add_callback(responses.PATCH, f"{API}/repos/{REPO}/issues/comments/12", callback=patched)
    responses.add(responses.PATCH, ISSUE, json=created_issue(PUBLIC["title"], with_marker(PUBLIC["body"])))
    responses.add(
        responses.POST,
        f"{API}/graphql",
        json={
            "data": {
                "nodes": [
                    {"id": "IC_12", "editor": {"login": "ada-novak"}, "lastEditedAt": "2026-11-23T08:40:00Z"},
                    {"id": "I_907", "editor": None, "lastEditedAt": None},
                ]
            }
        },
    )


def patches() -> dict[str, dict]:
    return {c.request.url: json.loads(c.request.body) for c in responses.calls if c.request.method == "PATCH"}


@responses.activate
def test_make_opaque_edits_syncd_comments_and_the_created_issue_in_place():
    person = comment(13, "We saw this at Northwind too", user="ada-novak")
    owner_gap = comment(14, f"acme/billing#7 has had no assignee since Mon\n\n<!-- syncd:{'f' * 20} -->\n")
    serve(
        [comment(11, CONTEXT), comment(12, DEMAND), person, owner_gap],
        created_issue(PRIVATE["title"], with_marker(PRIVATE["body"])),
    )

    result = connector().make_opaque("acme/billing#7", rewrite(), KEY)

    sent = patches()
    assert set(sent) == {f"{API}/repos/{REPO}/issues/comments/11", f"{API}/repos/{REPO}/issues/comments/12", ISSUE}
    context = sent[f"{API}/repos/{REPO}/issues/comments/11"]["body"]
    assert "Northwind" not in context and TICKET_URL not in context and "Invoice" not in context
    assert f"Support ticket `{ticket_hash(TICKET_URL)}`" in context and "<!-- syncd:context -->" in context
    assert f"<!-- syncd:{KEY} -->" in context  # the rewrite's own marker
    demand = sent[f"{API}/repos/{REPO}/issues/comments/12"]["body"]
    assert demand.startswith(OPAQUE_DEMAND) and "Northwind" not in demand and "<!-- syncd:demand -->" in demand
    # Title and description become the public draft; the create's marker stays for find_created.
    assert sent[ISSUE] == {"title": PUBLIC["title"], "body": with_marker(PUBLIC["body"])}
    assert result.rewritten == (
        "the linked-tickets comment",
        "the demand comment",
        "the issue title",
        "the issue description",
    )
    assert result.kept == ()
    assert result.comments == {"11": "2026-11-23T09:00:00Z", "12": "2026-11-23T09:00:00Z"}


@responses.activate
def test_make_opaque_leaves_a_text_someone_edited_after_syncd_wrote_it():
    edited = DEMAND.replace("Support demand", "Support demand (call Northwind first)")
    serve(
        [comment(11, CONTEXT, updated="2026-11-23T08:00:00Z"), comment(12, edited, updated="2026-11-23T08:40:00Z")],
        created_issue(PRIVATE["title"], with_marker(PRIVATE["body"] + "\n\nRepro: see Northwind's sheet")),
    )

    # syncd's last writes of both comments were answered with 08:00.
    result = connector().make_opaque(
        "acme/billing#7", rewrite(**{"11": "2026-11-23T08:00:00Z", "12": "2026-11-23T08:00:00Z"}), KEY
    )

    sent = patches()
    assert list(sent) == [f"{API}/repos/{REPO}/issues/comments/11", ISSUE]
    assert sent[ISSUE] == {"title": PUBLIC["title"]}  # the description was edited: only the title changes
    # REST does not say who edited: one GraphQL question for the kept texts does.
    assert [(k.what, k.url, k.edited_by) for k in result.kept] == [
        ("the demand comment", f"https://github.com/{REPO}/issues/7#issuecomment-12", "ada-novak"),
        ("the issue description", f"https://github.com/{REPO}/issues/7", None),
    ]
    assert result.kept[0].edited_at == datetime(2026, 11, 23, 8, 40, tzinfo=timezone.utc)
    [ask] = [c.request for c in responses.calls if c.request.url == f"{API}/graphql"]
    assert json.loads(ask.body)["variables"] == {"ids": ["IC_12", "I_907"]}


@responses.activate
def test_make_opaque_without_a_record_of_syncds_write_leaves_a_comment_edited_at_all():
    serve(
        [comment(11, CONTEXT, updated="2026-11-23T08:05:00Z")],
        created_issue(PUBLIC["title"], with_marker(PUBLIC["body"])),
    )
    result = connector().make_opaque("acme/billing#7", rewrite(), KEY)
    assert patches() == {}
    assert [k.what for k in result.kept] == ["the linked-tickets comment"]


@responses.activate
def test_make_opaque_sent_again_finds_its_texts_opaque_and_writes_nothing():
    c = connector()
    context = c._context_text(CONTEXT, [], True, KEY)
    demand = c._compose(OPAQUE_DEMAND, "", "demand", KEY)
    # A comment syncd itself rewrote before a crash is newer than syncd's last recorded write: not a person's edit.
    serve(
        [comment(11, context, updated="2026-11-23T09:00:00Z"), comment(12, demand, updated="2026-11-23T09:00:00Z")],
        created_issue(PUBLIC["title"], with_marker(PUBLIC["body"])),
    )
    result = c.make_opaque("acme/billing#7", rewrite(**{"11": "2026-11-23T08:00:00Z"}), "9" * 20)
    assert patches() == {}
    assert result.rewritten == () and result.kept == ()


@responses.activate
def test_visibility_reports_each_repository_as_last_read_without_asking():
    responses.add(
        responses.GET, f"{API}/repos/{REPO}", json={"private": True, "visibility": "private"}, headers={"ETag": '"1"'}
    )
    c = connector()
    assert c.reports_visibility and c.visibility() == {}
    assert c.is_public(REPO) is False
    calls = len(responses.calls)
    assert c.visibility() == {"acme/billing": False}
    assert len(responses.calls) == calls


@responses.activate
def test_who_edited_is_left_unsaid_when_graphql_cannot_be_asked():
    serve(
        [comment(12, DEMAND, updated="2026-11-23T08:40:00Z")],
        created_issue(PUBLIC["title"], with_marker(PUBLIC["body"])),
    )
    responses.replace(responses.POST, f"{API}/graphql", status=403, json={"message": "Resource not accessible"})
    result = connector().make_opaque("acme/billing#7", rewrite(**{"12": "2026-11-23T08:00:00Z"}), KEY)
    assert [(k.what, k.edited_by) for k in result.kept] == [("the demand comment", None)]
    assert patches() == {}


def test_graphql_endpoint_for_github_and_enterprise():
    from connectors.github.connector import graphql_url

    assert graphql_url("https://api.github.com") == "https://api.github.com/graphql"
    assert graphql_url("https://git.example.com/api/v3") == "https://git.example.com/api/graphql"
