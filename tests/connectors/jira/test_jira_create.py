"""The Jira handoff writes against mocked HTTP: create_issue, find_created, upsert_comment.

Answers are the recorded payloads in ../shared where one fits (jira-cli's
create answer, Airbyte's v3 issue and comments)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest
import responses
from pydantic import SecretStr, ValidationError

from connectors.base import SlotRecord
from connectors.jira.adf import validate_adf
from connectors.jira.connector import FIND_PROBE_MISSES, JiraConfig, JiraConnector, jira_labels
from syncd.errors import ApiError, NotFound, PayloadError, TransientError
from syncd.writes import IssueDraft

URL = "https://acme.atlassian.net"
API = f"{URL}/rest/api/3"
KEY = "0123456789abcdef0123"
OTHER = "fedcba9876543210fedc"
ME = "5fc9e78d2730d800760becc4"  # the author of Airbyte's recorded comments
DRAFT = IssueDraft(
    title="Login fails for Acme\non SSO",
    body="Escalated from **#42**\n\n- severity: sev1",
    labels=("support escalation", "  sso ", "support escalation", ""),
    priority="sev1",
)


def make(**overrides) -> JiraConnector:
    options = dict(
        url=URL, email="bot@acme.test", api_token=SecretStr("secret-token"), projects=["ENG"], time_zone="UTC"
    )
    options.update(overrides)
    return JiraConnector("jira", JiraConfig(**options), sleep=lambda s: None)


def load(fixtures_dir, name: str):
    return json.loads((fixtures_dir / "jira" / name).read_text())


def sent(call) -> dict:
    return json.loads(call.request.body)


@pytest.fixture
def created(fixtures_dir) -> dict:
    return load(fixtures_dir, "jira-cli-testdata/create.json")  # {"id": "10057", "key": "TEST-3"}


@pytest.fixture
def issue(fixtures_dir) -> dict:
    return load(fixtures_dir, "airbyte-source-jira/issues.json")["issues"][0]


@pytest.fixture
def comments(fixtures_dir) -> list[dict]:
    return load(fixtures_dir, "airbyte-source-jira/issue_comments.json")["comments"]


def with_marker(raw: dict, ident: str, key: str, marker: str | None) -> dict:
    out = copy.deepcopy(raw)
    out["id"], out["key"] = ident, key
    out["properties"] = {"syncd": {"key": marker}} if marker else {}
    return out


# --- create_issue ------------------------------------------------------------------------------


@responses.activate
def test_create_is_one_post_carrying_the_marker_as_an_issue_property(created, issue):
    responses.post(f"{API}/issue", json=created, status=201)
    responses.get(f"{API}/issue/10057", json=issue)
    result = make(priorities={"sev1": "Highest"}).create_issue("ENG", DRAFT, KEY)
    posts = [c for c in responses.calls if c.request.method == "POST"]
    assert len(posts) == 1
    body = sent(posts[0])
    assert body["properties"] == [{"key": "syncd", "value": {"key": KEY}}]
    fields = body["fields"]
    assert fields["project"] == {"key": "ENG"}
    assert fields["summary"] == "Login fails for Acme on SSO"
    assert fields["issuetype"] == {"name": "Bug"}
    assert fields["labels"] == ["support-escalation", "sso"]
    assert fields["priority"] == {"name": "Highest"}
    assert validate_adf(fields["description"]) == []
    assert fields["description"]["content"][0]["content"][1] == {
        "type": "text",
        "text": "#42",
        "marks": [{"type": "strong"}],
    }
    assert KEY not in json.dumps(fields)  # the marker is hidden, not in the text
    assert result.id == "10057"
    assert result.updated_at == datetime(2022, 12, 8, 10, 22, 18, 889000, tzinfo=timezone.utc)  # its fields.updated
    assert responses.calls[1].request.params == {"fields": "updated"}


@responses.activate
def test_issue_type_is_configurable_per_project_and_unmapped_severity_sets_no_priority(created, issue):
    responses.post(f"{API}/issue", json=created, status=201)
    responses.get(f"{API}/issue/10057", json=issue)
    make(projects=["ENG", "OPS"], issue_type="Task", issue_types={"OPS": "Incident"}).create_issue(
        "OPS", IssueDraft("x", "y", priority="sev4"), KEY
    )
    fields = sent(responses.calls[0])["fields"]
    assert fields["issuetype"] == {"name": "Incident"} and "priority" not in fields and "labels" not in fields


def test_issue_types_config_is_checked():
    with pytest.raises(ValidationError, match="project keys"):
        make(issue_types={"ops": "Task"})
    with pytest.raises(ValidationError, match="empty issue type"):
        make(issue_types={"OPS": " "})


@responses.activate
def test_a_field_missing_from_the_create_screen_is_dropped_not_fatal(created, issue):
    responses.post(
        f"{API}/issue",
        status=400,
        json={
            "errorMessages": [],
            "errors": {
                "labels": "Field 'labels' cannot be set. It is not on the appropriate screen, or unknown.",
                "priority": "Field 'priority' cannot be set. It is not on the appropriate screen, or unknown.",
            },
        },
    )
    responses.post(f"{API}/issue", json=created, status=201)
    responses.get(f"{API}/issue/10057", json=issue)
    result = make(priorities={"sev1": "High"}).create_issue("ENG", DRAFT, KEY)
    posts = [sent(c) for c in responses.calls if c.request.method == "POST"]
    assert len(posts) == 2 and result.id == "10057"
    assert "labels" in posts[0]["fields"] and "labels" not in posts[1]["fields"]
    assert "priority" not in posts[1]["fields"]
    assert posts[1]["properties"] == posts[0]["properties"]


@responses.activate
def test_a_refused_required_field_fails_at_once_even_beside_an_optional_one():
    responses.post(
        f"{API}/issue",
        status=400,
        json={
            "errorMessages": [],
            "errors": {
                "labels": "Field 'labels' cannot be set.",
                "summary": "You must specify a summary of the issue.",
            },
        },
    )
    with pytest.raises(ApiError, match="summary: You must specify a summary"):
        make().create_issue("ENG", DRAFT, KEY)
    assert len(responses.calls) == 1


@responses.activate
def test_unknown_project_and_issue_type_say_what_to_change():
    responses.post(
        f"{API}/issue", status=400, json={"errorMessages": [], "errors": {"project": "valid project is required"}}
    )
    with pytest.raises(NotFound, match="project 'PLAT' cannot take new issues.*route's team"):
        make().create_issue("PLAT", DRAFT, KEY)
    responses.replace(
        responses.POST,
        f"{API}/issue",
        status=400,
        json={"errorMessages": [], "errors": {"issuetype": "Specify a valid issue type"}},
    )
    with pytest.raises(ApiError, match=r"no issue type 'Bug'.*connectors\.jira\.issue_type "):
        make().create_issue("ENG", DRAFT, KEY)
    with pytest.raises(ApiError, match=r"connectors\.jira\.issue_types\.ENG"):
        make(issue_types={"ENG": "Bug"}).create_issue("ENG", DRAFT, KEY)


@responses.activate
def test_a_team_that_is_not_a_project_key_is_refused_before_any_request():
    with pytest.raises(NotFound, match="'acme/web' is not a Jira project key"):
        make().create_issue("acme/web", DRAFT, KEY)
    with pytest.raises(NotFound):
        make().find_created("eng", KEY)
    assert len(responses.calls) == 0


@responses.activate
def test_an_unreadable_create_answer_is_maybe_applied_or_a_payload_error():
    responses.post(f"{API}/issue", status=201, body="<html>oops</html>")
    with pytest.raises(TransientError) as err:
        make().create_issue("ENG", DRAFT, KEY)
    assert err.value.maybe_applied
    responses.replace(responses.POST, f"{API}/issue", status=201, json={"key": "ENG-3"})
    with pytest.raises(PayloadError, match="no issue id"):
        make().create_issue("ENG", DRAFT, KEY)


@responses.activate
def test_a_failed_timestamp_read_does_not_fail_the_create(created):
    responses.post(f"{API}/issue", json=created, status=201)
    responses.get(f"{API}/issue/10057", status=404, json={"errorMessages": ["Issue does not exist"]})
    result = make().create_issue("ENG", DRAFT, KEY)
    assert result.id == "10057" and result.updated_at is None


def test_labels_are_sanitised_for_jira():
    assert jira_labels(("needs triage", "a\tb  c", "x" * 300, "ok", "ok", " ")) == [
        "needs-triage",
        "a-b-c",
        "x" * 255,
        "ok",
    ]


# --- find_created ------------------------------------------------------------------------------


@responses.activate
def test_find_created_finds_the_marker_in_search_with_one_request(issue):
    found = with_marker(issue, "10060", "ENG-7", KEY)
    responses.post(
        f"{API}/search/jql", json={"issues": [with_marker(issue, "10061", "ENG-8", OTHER), found], "isLast": True}
    )
    assert make().find_created("ENG", KEY) == "10060"
    assert len(responses.calls) == 1
    body = sent(responses.calls[0])
    assert body["jql"] == 'project = "ENG" ORDER BY created DESC'
    assert body["properties"] == ["syncd"] and body["fields"] == ["created"]


@responses.activate
def test_find_created_reads_past_search_by_key_for_issues_not_indexed_yet(issue):
    responses.post(
        f"{API}/search/jql",
        json={
            "issues": [with_marker(issue, "10061", "ENG-8", None), with_marker(issue, "10050", "ENG-5", None)],
            "isLast": True,
        },
    )
    responses.get(f"{API}/issue/ENG-9", json=with_marker(issue, "10062", "ENG-9", OTHER))
    responses.get(f"{API}/issue/ENG-10", status=404, json={"errorMessages": ["Issue does not exist"]})
    responses.get(f"{API}/issue/ENG-11", json=with_marker(issue, "10064", "ENG-11", KEY))
    assert make().find_created("ENG", KEY) == "10064"
    reads = [c.request for c in responses.calls if c.request.method == "GET"]
    assert [r.path_url.split("?")[0].rsplit("/", 1)[1] for r in reads] == ["ENG-9", "ENG-10", "ENG-11"]
    assert reads[0].params == {"fields": "created", "properties": "syncd"}


@responses.activate
def test_find_created_gives_up_after_missing_keys_in_a_row(issue):
    responses.post(f"{API}/search/jql", json={"issues": [with_marker(issue, "10061", "ENG-8", None)], "isLast": True})
    for n in range(9, 9 + FIND_PROBE_MISSES):
        responses.get(f"{API}/issue/ENG-{n}", status=404, json={"errorMessages": ["Issue does not exist"]})
    assert make().find_created("ENG", KEY) is None
    assert len(responses.calls) == 1 + FIND_PROBE_MISSES


@responses.activate
def test_find_created_pages_search_and_counts_only_this_projects_keys(issue):
    moved_in = with_marker(issue, "10090", "OPS-40", None)  # another project's key: no number for ENG
    responses.post(
        f"{API}/search/jql",
        json={"issues": [moved_in, with_marker(issue, "10003", "ENG-3", None)], "nextPageToken": "p2", "isLast": False},
    )
    responses.post(f"{API}/search/jql", json={"issues": [with_marker(issue, "10001", "ENG-1", KEY)], "isLast": True})
    assert make().find_created("ENG", KEY) == "10001"
    assert sent(responses.calls[1])["nextPageToken"] == "p2"


@responses.activate
def test_find_created_in_an_unknown_project_is_not_found():
    responses.post(
        f"{API}/search/jql",
        status=400,
        json={"errorMessages": ["The value 'PLAT' does not exist for the field 'project'."], "errors": {}},
    )
    with pytest.raises(NotFound, match="project 'PLAT' is not on this Jira site"):
        make().find_created("PLAT", KEY)


# --- upsert_comment ----------------------------------------------------------------------------


def slot_comment(template: dict, slot: str, marker: str, body: dict, digest: str | None) -> dict:
    comment = copy.deepcopy(template)
    value = {"key": marker, "slot": slot}
    if digest:
        value["digest"] = digest
    comment["properties"] = [{"key": "syncd", "value": value}]
    comment["body"] = body
    return comment


def thread(*comments: dict) -> dict:
    return {"startAt": 0, "maxResults": 100, "total": len(comments), "comments": list(comments)}


def myself() -> None:
    responses.get(f"{API}/myself", json={"accountId": ME, "timeZone": "UTC"})


@responses.activate
def test_upsert_creates_the_slot_comment_when_absent(comments):
    myself()
    responses.get(f"{API}/issue/10627/comment", json=thread(*comments))
    responses.post(f"{API}/issue/10627/comment", json=comments[0], status=201)
    result = make().upsert_comment("10627", "Demand: **3** tickets", KEY, "demand")
    post = sent(responses.calls[-1])
    value = post["properties"][0]["value"]
    assert post["properties"][0]["key"] == "syncd" and value["key"] == KEY and value["slot"] == "demand"
    assert validate_adf(post["body"]) == []
    assert result.id == "10755"
    assert responses.calls[1].request.params["expand"] == "properties"


@responses.activate
def test_upsert_leaves_an_equal_comment_alone_and_edits_a_different_one_in_place(comments):
    myself()
    connector = make()
    # Learn what syncd writes for this text, then serve it back as the stored comment.
    responses.get(f"{API}/issue/10627/comment", json=thread())
    responses.post(f"{API}/issue/10627/comment", json=comments[0], status=201)
    connector.upsert_comment("10627", "Demand: 3 tickets", KEY, "demand")
    written = sent(responses.calls[-1])
    stored = slot_comment(comments[0], "demand", KEY, written["body"], written["properties"][0]["value"]["digest"])
    responses.get(f"{API}/issue/10627/comment/10755", json=stored)
    responses.put(f"{API}/issue/10627/comment/10755", json=dict(stored, updated="2026-11-21T12:00:00.000+0000"))
    before = len(responses.calls)
    same = connector.upsert_comment("10627", "Demand: 3 tickets", OTHER, "demand")
    assert [c.request.method for c in responses.calls[before:]] == ["GET"]  # the remembered id, no scan
    assert same.id == "10755"
    changed = connector.upsert_comment("10627", "Demand: 4 tickets", OTHER, "demand")
    put = responses.calls[-1]
    assert put.request.method == "PUT"
    assert sent(put)["properties"][0]["value"]["key"] == OTHER
    assert changed.updated_at == datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


@responses.activate
def test_a_person_editing_the_text_gets_it_put_back(comments):
    myself()
    connector = make()
    responses.get(f"{API}/issue/10627/comment", json=thread())
    responses.post(f"{API}/issue/10627/comment", json=comments[0], status=201)
    connector.upsert_comment("10627", "Demand: 3 tickets", KEY, "demand")
    value = sent(responses.calls[-1])["properties"][0]["value"]
    edited = {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Demand: 300 tickets"}]}],
    }
    responses.get(
        f"{API}/issue/10627/comment/10755", json=slot_comment(comments[0], "demand", KEY, edited, value["digest"])
    )
    responses.put(f"{API}/issue/10627/comment/10755", json=comments[0])
    connector.upsert_comment("10627", "Demand: 3 tickets", KEY, "demand")
    assert responses.calls[-1].request.method == "PUT"


@responses.activate
def test_the_slot_is_found_by_scanning_and_only_on_syncds_own_comments(comments):
    myself()
    foreign = slot_comment(comments[0], "demand", KEY, comments[0]["body"], None)
    foreign["id"], foreign["author"] = "20000", dict(foreign["author"], accountId="someone-else")
    other_slot = slot_comment(comments[1], "summary", KEY, comments[1]["body"], None)
    ours = slot_comment(comments[1], "demand", KEY, comments[1]["body"], None)
    ours["id"] = "10999"
    responses.get(f"{API}/issue/10627/comment", json=thread(foreign, other_slot, ours))
    responses.put(f"{API}/issue/10627/comment/10999", json=ours)
    make().upsert_comment("10627", "Demand: 3 tickets", KEY, "demand")
    assert responses.calls[-1].request.method == "PUT"
    assert responses.calls[-1].request.url.endswith("/comment/10999")


@responses.activate
def test_a_remembered_comment_that_is_gone_is_looked_for_again(comments):
    myself()
    connector = make()
    responses.get(f"{API}/issue/10627/comment", json=thread())
    responses.post(f"{API}/issue/10627/comment", json=comments[0], status=201)
    connector.upsert_comment("10627", "Demand: 3 tickets", KEY, "demand")
    responses.get(
        f"{API}/issue/10627/comment/10755",
        status=404,
        json={"errorMessages": ["Can not find a comment for the id: 10755."]},
    )
    connector.upsert_comment("10627", "Demand: 4 tickets", KEY, "demand")
    methods = [(c.request.method, c.request.path_url.split("?")[0]) for c in responses.calls]
    assert methods[-3:] == [
        ("GET", "/rest/api/3/issue/10627/comment/10755"),
        ("GET", "/rest/api/3/issue/10627/comment"),
        ("POST", "/rest/api/3/issue/10627/comment"),
    ]


def test_jira_is_private_so_customer_data_may_go_there():
    assert make().is_private("ENG") is True


@responses.activate
def test_the_comment_the_store_names_is_edited_with_no_read(comments):
    """A new process: the store says which comment syncd's last delivered write answered with."""
    responses.put(f"{API}/issue/10627/comment/10755", json=comments[0])
    result = make().upsert_comment("10627", "Demand: 4 tickets", KEY, "demand", known=SlotRecord(True, "10755"))
    assert result.id == "10755"
    assert [(c.request.method, c.request.path_url) for c in responses.calls] == [
        ("PUT", "/rest/api/3/issue/10627/comment/10755")
    ]
    assert sent(responses.calls[-1])["properties"][0]["value"]["slot"] == "demand"


@responses.activate
def test_the_comment_the_store_names_deleted_since_is_made_again(comments):
    myself()
    missing = {"errorMessages": ["Can not find a comment for the id: 10755."]}
    responses.put(f"{API}/issue/10627/comment/10755", status=404, json=missing)
    responses.get(f"{API}/issue/10627/comment", json=thread())
    responses.post(f"{API}/issue/10627/comment", json=comments[1], status=201)
    result = make().upsert_comment("10627", "Demand: 4 tickets", KEY, "demand", known=SlotRecord(True, "10755"))
    assert result.id == comments[1]["id"]
    methods = [(c.request.method, c.request.path_url.split("?")[0]) for c in responses.calls]
    assert [m for m in methods if "myself" not in m[1]] == [
        ("PUT", "/rest/api/3/issue/10627/comment/10755"),
        ("GET", "/rest/api/3/issue/10627/comment"),
        ("POST", "/rest/api/3/issue/10627/comment"),
    ]
