"""Every normaliser, fed mutated real payloads, raises only its declared error.

Declared errors: Zendesk ``PayloadError`` from a ticket (a malformed comment
is skipped, never raised), Linear a rejection (``_Reject``, which its feed
turns into a Rejected), GitHub a Rejected from its page normaliser, Jira
``PayloadError``, ADF ``to_text`` nothing at all. What they do return must be
a well-typed record that can be stored as JSON.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.github.connector import GitHubConfig, GitHubConnector
from connectors.jira.adf import to_text
from connectors.jira.connector import JiraConfig, JiraConnector
from connectors.linear import connector as linear_mod
from connectors.linear.connector import LinearConfig, LinearConnector
from connectors.zendesk.connector import ZendeskConfig, ZendeskConnector
from syncd.errors import PayloadError
from syncd.records import Comment, Issue, StateCategory, Ticket, to_dict
from tests.conftest import FIXTURES, require_shared
from tests.fuzz.mutate import FUZZ, JUNK, mutated, payloads

# Test credentials (never real); tests/test_no_secrets.py checks that none leaks.
FUZZ_SECRETS = ("fuzz-zendesk-token-1f2e", "lin_api_fuzz_key_9d8c", "ghp_fuzz_token_7b6a", "fuzz-jira-token-5e4d")


def fixture(*parts: str):
    return json.loads(require_shared(FIXTURES.joinpath(*parts)).read_text())


def zendesk() -> ZendeskConnector:
    return ZendeskConnector(
        "zd",
        ZendeskConfig(kind="zendesk", url="https://acme.zendesk.com", email="bot@acme.test", token=FUZZ_SECRETS[0]),
        sleep=lambda s: None,
    )


def linear() -> LinearConnector:
    return LinearConnector(
        "lin",
        LinearConfig(kind="linear", url="https://api.linear.app", api_key=FUZZ_SECRETS[1], teams=["ENG"]),
        sleep=lambda s: None,
    )


def github() -> GitHubConnector:
    return GitHubConnector(
        "gh",
        GitHubConfig(kind="github", token=FUZZ_SECRETS[2], repositories=["octokit-fixture-org/paginate-issues"]),
        sleep=lambda s: None,
    )


def jira() -> JiraConnector:
    return JiraConnector(
        "jira",
        JiraConfig(
            kind="jira",
            url="https://acme.atlassian.net",
            email="bot@acme.test",
            api_token=FUZZ_SECRETS[3],
            projects=["ENG"],
            time_zone="UTC",
        ),
        sleep=lambda s: None,
    )


def assert_storable(record: object) -> None:
    json.dumps(to_dict(record))


def assert_ticket(t: object) -> None:
    assert isinstance(t, Ticket)
    assert isinstance(t.subject, str) and isinstance(t.status, str) and isinstance(t.description, str)
    assert isinstance(t.updated_at, datetime) and t.updated_at.tzinfo is not None
    assert all(isinstance(tag, str) for tag in t.tags)
    assert t.priority is None or isinstance(t.priority, str)
    if t.requester is not None:
        assert isinstance(t.requester.name, str)
        assert t.requester.email is None or isinstance(t.requester.email, str)
    if t.organization is not None:
        assert isinstance(t.organization.name, str)
        assert t.organization.tier is None or isinstance(t.organization.tier, str)
    assert_storable(t)


def assert_issue(i: object) -> None:
    assert isinstance(i, Issue)
    for name in ("key", "url", "title", "state_name"):
        assert isinstance(getattr(i, name), str), name
    assert i.ref.id and isinstance(i.ref.id, str)
    assert isinstance(i.state, StateCategory)
    assert isinstance(i.updated_at, datetime) and i.updated_at.tzinfo is not None
    for name in ("assignee", "team", "resolution"):
        assert getattr(i, name) is None or isinstance(getattr(i, name), str), name
    assert_storable(i)


# -- seeds from the recordings ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def zendesk_seed():
    body = fixture("zendesk", "decoded", "TicketsIncrementalTest.test_get_values.decoded.json")[0]["response_body"]
    users = fixture("zendesk", "decoded", "UsersIncrementalTest.test_get_values.decoded.json")[0]["response_body"]
    ticket = next(t for t in body["tickets"] if t.get("organization_id") and t.get("requester_id"))
    # Only the keys a ticket's requester is read from, so the mutations land there.
    user = {
        k: copy.deepcopy(v)
        for k, v in users["users"][0].items()
        if k in ("id", "name", "email", "organization_id", "role", "url")
    }
    user["id"] = ticket["requester_id"]
    # The recordings sideload no organisation: one in the documented shape, for this ticket.
    org = {"id": ticket["organization_id"], "name": "Fjord Analytics", "organization_fields": {"plan": "enterprise"}}
    return {"ticket": ticket, "users": [user], "organizations": [org]}


@pytest.fixture(scope="module")
def zendesk_comment_seed():
    body = fixture("zendesk", "decoded", "legacy-2017__TestTicketAPIMethods.test_show_ticket_comments.decoded.json")
    return body[0]["response_body"]["comments"][0]


@pytest.fixture(scope="module")
def linear_seed():
    node = fixture("linear", "bugwarrior_issues_query.json")["response"]["data"]["issues"]["nodes"][0]
    # bugwarrior's query asks for less than syncd's: add what syncd's query reads.
    return {
        **node,
        "id": "2f6b1c4e-6a44-4a0e-9d0b-6f3f2a1c9e10",
        "state": {**node["state"], "type": "completed"},
        "assignee": {**node["assignee"], "name": "Dustin"},
        "team": {**node["team"], "key": "DUS"},
        "attachments": {
            "nodes": [
                {
                    "url": "https://acme.zendesk.com/agent/tickets/7",
                    "title": "#7",
                    "metadata": {"syncd": "0123456789abcdef0123"},
                }
            ]
        },
    }


@pytest.fixture(scope="module")
def github_seed():
    recorded = fixture("github", "octokit-fixtures", "paginate-issues.normalized-fixture.json")
    page = next(r["response"] for r in recorded if isinstance(r["response"], list) and r["response"])
    return page[0]


@pytest.fixture(scope="module")
def jira_seed():
    from connectors.jira.connector import ISSUE_FIELDS

    issue = fixture("jira", "airbyte-source-jira", "issues.json")["issues"][0]
    # syncd asks /search/jql for ISSUE_FIELDS only: that is what a real answer holds.
    return {
        **{k: issue[k] for k in ("id", "key", "self")},
        "fields": {k: v for k, v in issue["fields"].items() if k in ISSUE_FIELDS},
    }


@pytest.fixture(scope="module")
def adf_seed():
    return fixture("jira", "airbyte-source-jira", "issue_comments.json")["comments"][0]["body"]


# -- the seeds themselves are valid ------------------------------------------------------------------


def test_seeds_normalise(zendesk_seed, zendesk_comment_seed, linear_seed, github_seed, jira_seed, adf_seed):
    zd = zendesk()
    from connectors.zendesk.connector import _index

    ticket = zd._ticket(zendesk_seed["ticket"], _index(zendesk_seed["users"]), _index(zendesk_seed["organizations"]))
    assert_ticket(ticket)
    assert ticket.organization.tier == "enterprise"
    assert isinstance(zd._comment(zendesk_comment_seed, "1"), Comment)
    assert_issue(linear().normalise(linear_seed))
    records, rejected, _ = github()._normalise_page([github_seed], False, set())
    assert rejected == [] and len(records) == 1
    assert_issue(records[0])
    assert_issue(jira().normalise(jira_seed))
    assert to_text(adf_seed)


# -- properties --------------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_zendesk_ticket_users_and_orgs(zendesk_seed, data):
    from connectors.zendesk.connector import _index

    raw = data.draw(payloads(zendesk_seed["ticket"]), label="ticket")
    users = data.draw(st.one_of(st.just(zendesk_seed["users"]), mutated(zendesk_seed["users"]), JUNK), label="users")
    orgs = data.draw(
        st.one_of(st.just(zendesk_seed["organizations"]), mutated(zendesk_seed["organizations"]), JUNK),
        label="organizations",
    )
    try:
        ticket = zendesk()._ticket(raw, _index(users), _index(orgs))
    except PayloadError as exc:
        assert str(exc).startswith("zd: ")
        return
    assert_ticket(ticket)


@FUZZ
@given(data=st.data())
def test_zendesk_comment(zendesk_comment_seed, data):
    raw = data.draw(payloads(zendesk_comment_seed))
    comment = zendesk()._comment(raw, "4634")  # None: skipped and logged
    if comment is not None:
        assert isinstance(comment.body, str) and isinstance(comment.id, str)
        assert comment.author_id is None or isinstance(comment.author_id, str)
        assert_storable(comment)


@FUZZ
@given(data=st.data())
def test_linear_issue_node(linear_seed, data):
    node = data.draw(payloads(linear_seed))
    try:
        issue = linear().normalise(node)
    except linear_mod._Reject as exc:
        assert str(exc)
        return
    assert_issue(issue)
    for attachment in issue.attachments:
        assert isinstance(attachment.url, str) and isinstance(attachment.title, str)
        assert attachment.marker is None or isinstance(attachment.marker, str)


@FUZZ
@given(data=st.data())
def test_github_issue_page(github_seed, data):
    items = data.draw(st.lists(payloads(github_seed), min_size=1, max_size=3))
    records, rejected, times = github()._normalise_page([github_seed, *items], False, set())
    assert len(records) + len(rejected) <= len(items) + 1
    assert records and records[0].ref.id == str(github_seed["id"])  # the good one is kept
    for issue in records:
        assert_issue(issue)
    for r in rejected:
        assert r.reason.startswith("github issue payload: ")
    for t in times:
        assert isinstance(t, str)


@FUZZ
@given(data=st.data())
def test_jira_issue(jira_seed, data):
    raw = data.draw(payloads(jira_seed))
    try:
        issue = jira().normalise(raw)
    except PayloadError as exc:
        assert str(exc).startswith("jira: issue ")
        return
    assert_issue(issue)


@FUZZ
@given(data=st.data())
def test_adf_to_text_never_raises(adf_seed, data):
    doc = data.draw(payloads(adf_seed))
    assert isinstance(to_text(doc), str)


# -- timestamps at the edges, in every normaliser's time field ----------------------------------------

EDGE_TIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "2024-13-45T99:99:99Z",
    "2024-02-30T00:00:00Z",
    "+002024-01-01T00:00:00Z",
    "",
    "2024-01-01",
    "2024-01-01T00:00:00",
    "\ud800",
]


@pytest.mark.parametrize("when", EDGE_TIMES)
def test_edge_timestamps_are_read_or_refused_never_crash(
    when, zendesk_seed, zendesk_comment_seed, linear_seed, github_seed, jira_seed
):
    from connectors.zendesk.connector import _index

    zd = zendesk()
    for key in ("updated_at", "created_at"):
        try:
            assert_ticket(zd._ticket({**zendesk_seed["ticket"], key: when}, _index(zendesk_seed["users"]), {}))
        except PayloadError:
            pass
    comment = zd._comment({**zendesk_comment_seed, "created_at": when}, "1")
    if comment is not None:
        assert_storable(comment)
    try:
        assert_issue(linear().normalise({**linear_seed, "updatedAt": when}))
    except linear_mod._Reject:
        pass
    records, rejected, _ = github()._normalise_page([{**github_seed, "updated_at": when}], False, set())
    for issue in records:
        assert_issue(issue)
    try:
        assert_issue(jira().normalise({**jira_seed, "fields": {**jira_seed["fields"], "updated": when}}))
    except PayloadError:
        pass
