"""Every request the Jira connector makes conforms to Jira Cloud's own
description (../shared/specs/jira/swagger-v3.v3.json), and none uses the
withdrawn ``/rest/api/3/search``."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from pydantic import SecretStr

from connectors.jira.connector import JiraConfig, JiraConnector
from syncd.records import idempotency_key
from tests.contract.openapi import assert_calls_conform, contract_fixture

pytestmark = pytest.mark.contract

BASE = "https://acme.atlassian.net"
KEY = idempotency_key("contract", "jira")
ISSUE = {
    "id": "10627",
    "key": "ENG-1",
    "fields": {
        "summary": "Login fails",
        "updated": "2026-11-21T12:00:00.000+0000",
        "status": {"name": "To Do", "statusCategory": {"key": "new"}},
        "resolution": None,
        "assignee": None,
        "project": {"key": "ENG"},
        "issuetype": {"name": "Bug"},
    },
}

jira_contract = contract_fixture(
    "jira/swagger-v3.v3.json",
    # Withdrawn in favour of /search/jql (API_NOTES.md); still in the description.
    forbid_paths={"/rest/api/3/search"},
    patches={
        # Jira's OAuth 2.0 (3LO) access token travels as "Authorization: Bearer"
        # (Jira Cloud docs); openapi-core cannot check an oauth2 scheme at all,
        # which would let a request with no credentials pass.
        "/components/securitySchemes/OAuth2": {"type": "http", "scheme": "bearer"},
    },
)


def connector(**overrides) -> JiraConnector:
    options = dict(
        url=BASE, email="bot@acme.test", api_token=SecretStr("contract-token"), projects=["ENG", "OPS"], page_size=50
    )
    options.update(overrides)
    return JiraConnector("jira", JiraConfig(**options), sleep=lambda s: None)


@responses.activate
def test_every_request_conforms(jira_contract):
    responses.get(f"{BASE}/rest/api/3/myself", json={"accountId": "1", "timeZone": "Europe/Paris"})
    responses.post(f"{BASE}/rest/api/3/search/jql", json={"issues": [ISSUE], "nextPageToken": "next", "isLast": False})
    responses.post(f"{BASE}/rest/api/3/search/jql", json={"issues": [], "isLast": True})
    responses.get(f"{BASE}/rest/api/3/issue/ENG-1", json=ISSUE)
    responses.post(
        f"{BASE}/rest/api/3/issue/10627/comment",
        status=201,
        json={"id": "1", "created": "2026-11-21T12:00:00.000+0000"},
    )
    responses.get(
        f"{BASE}/rest/api/3/issue/10627/comment", json={"startAt": 0, "maxResults": 100, "total": 0, "comments": []}
    )
    responses.post(f"{BASE}/rest/api/3/issue/10627/remotelink", status=201, json={"id": 1})
    responses.post(f"{BASE}/rest/api/3/issue/bulkfetch", json={"issues": [ISSUE], "issueErrors": []})

    jira = connector(time_zone=None, ticket_icon_url="https://acme.zendesk.com/favicon.ico")
    jira.check()
    pages = list(jira.poll(None))
    jira.get_issue("ENG-1")
    jira.add_comment(
        "10627", "Linked **#42**:\n\n- [ticket](https://acme.zendesk.com/agent/tickets/42)\n```\ntrace\n```", KEY
    )
    jira.find_marker("10627", KEY)
    jira.attach_ticket("10627", "https://acme.zendesk.com/agent/tickets/42", "#42 Login fails", "Acme", KEY)
    presence = jira.presence(["10627", "10628"], {})

    assert len(pages) == 2
    assert set(presence.found) == {"10627"} and set(presence.gone) == {"10628"}
    assert assert_calls_conform(responses.calls, jira_contract) == [
        "GET /rest/api/3/myself",
        "POST /rest/api/3/search/jql",
        "POST /rest/api/3/search/jql",
        "GET /rest/api/3/issue/{issueIdOrKey}",
        "POST /rest/api/3/issue/{issueIdOrKey}/comment",
        "GET /rest/api/3/issue/{issueIdOrKey}/comment",
        "POST /rest/api/3/issue/{issueIdOrKey}/remotelink",
        "POST /rest/api/3/issue/bulkfetch",
    ]


def test_the_contract_refuses_a_bulk_fetch_without_its_ids(jira_contract):
    auth = ("bot@acme.test", "contract-token")
    bad = requests.Request("POST", f"{BASE}/rest/api/3/issue/bulkfetch", auth=auth, json={"ids": ["10627"]})
    with pytest.raises(AssertionError, match="does not conform"):
        jira_contract.validate(bad)


@responses.activate
def test_oauth_requests_conform_too(jira_contract):
    responses.post(f"{BASE}/rest/api/3/search/jql", json={"issues": [], "isLast": True})
    list(connector(api_token=None, email=None, oauth_token=SecretStr("oauth-token"), time_zone="UTC").poll(None))
    assert assert_calls_conform(responses.calls, jira_contract) == ["POST /rest/api/3/search/jql"]


def test_the_contract_refuses_the_withdrawn_search_and_bad_bodies(jira_contract):
    auth = ("bot@acme.test", "contract-token")
    withdrawn = requests.Request(
        "POST", f"{BASE}/rest/api/3/search", auth=auth, json={"jql": "project = ENG", "startAt": 0}
    )
    with pytest.raises(AssertionError, match="must not use"):
        jira_contract.validate(withdrawn)
    wrong_body = requests.Request(
        "POST", f"{BASE}/rest/api/3/search/jql", auth=auth, json={"jql": "project = ENG", "startAt": 0}
    )  # startAt is the old paging
    with pytest.raises(AssertionError, match="does not conform"):
        jira_contract.validate(wrong_body)
    no_auth = requests.Request("GET", f"{BASE}/rest/api/3/myself")
    with pytest.raises(AssertionError, match="does not conform"):
        jira_contract.validate(no_auth)
    unknown_query = requests.Request("GET", f"{BASE}/rest/api/3/issue/ENG-1/comment", auth=auth, params={"cursor": "x"})
    with pytest.raises(AssertionError, match="cursor"):
        jira_contract.validate(unknown_query)


def test_the_comment_body_is_what_the_description_shows(jira_contract):
    """The description's own example comment body is ADF of the same shape syncd sends."""
    import connectors.jira.adf as adf

    spec = json.loads((jira_contract_path()).read_text())
    example = spec["paths"]["/rest/api/3/issue/{issueIdOrKey}/comment"]["post"]["requestBody"]["content"][
        "application/json"
    ]["example"]["body"]
    assert adf.validate_adf(example) == []
    text = adf.to_text(example)
    assert adf.to_adf(text) == example


def jira_contract_path():
    from tests.conftest import SPECS, require_shared

    return require_shared(SPECS / "jira/swagger-v3.v3.json")


@responses.activate
def test_handoff_requests_conform(jira_contract):
    """create_issue (with a retry without a field the screen lacks), find_created and upsert_comment."""
    from syncd.writes import IssueDraft

    responses.post(
        f"{BASE}/rest/api/3/issue",
        status=400,
        json={"errorMessages": [], "errors": {"priority": "Field 'priority' cannot be set."}},
    )
    responses.post(f"{BASE}/rest/api/3/issue", status=201, json={"id": "10627", "key": "ENG-1", "self": BASE})
    responses.get(f"{BASE}/rest/api/3/issue/10627", json=ISSUE)
    responses.post(f"{BASE}/rest/api/3/search/jql", json={"issues": [dict(ISSUE, properties={})], "isLast": True})
    responses.get(f"{BASE}/rest/api/3/issue/ENG-2", status=404, json={"errorMessages": ["no"], "errors": {}})
    responses.get(f"{BASE}/rest/api/3/issue/ENG-3", status=404, json={"errorMessages": ["no"], "errors": {}})
    responses.get(f"{BASE}/rest/api/3/issue/ENG-4", status=404, json={"errorMessages": ["no"], "errors": {}})
    responses.get(f"{BASE}/rest/api/3/myself", json={"accountId": "1", "timeZone": "UTC"})
    comment = {
        "id": "5",
        "author": {"accountId": "1"},
        "created": "2026-11-21T12:00:00.000+0000",
        "body": {"type": "doc", "version": 1, "content": []},
        "properties": [{"key": "syncd", "value": {"key": KEY, "slot": "demand"}}],
    }
    responses.get(
        f"{BASE}/rest/api/3/issue/10627/comment", json={"startAt": 0, "maxResults": 100, "total": 0, "comments": []}
    )
    responses.post(f"{BASE}/rest/api/3/issue/10627/comment", status=201, json=comment)
    responses.get(f"{BASE}/rest/api/3/issue/10627/comment/5", json=comment)
    responses.put(f"{BASE}/rest/api/3/issue/10627/comment/5", json=comment)

    jira = connector(time_zone="UTC", priorities={"sev1": "Highest"})
    draft = IssueDraft(
        "Login fails",
        "From **#42**:\n\n- [ticket](https://acme.zendesk.com/agent/tickets/42)",
        ("support escalation",),
        "sev1",
    )
    assert jira.create_issue("ENG", draft, KEY).id == "10627"
    assert jira.find_created("ENG", KEY) is None
    jira.upsert_comment("10627", "Demand: 3 tickets", KEY, "demand")
    jira.upsert_comment("10627", "Demand: 4 tickets", KEY, "demand")

    assert assert_calls_conform(responses.calls, jira_contract) == [
        "POST /rest/api/3/issue",
        "POST /rest/api/3/issue",
        "GET /rest/api/3/issue/{issueIdOrKey}",
        "POST /rest/api/3/search/jql",
        "GET /rest/api/3/issue/{issueIdOrKey}",
        "GET /rest/api/3/issue/{issueIdOrKey}",
        "GET /rest/api/3/issue/{issueIdOrKey}",
        "GET /rest/api/3/myself",
        "GET /rest/api/3/issue/{issueIdOrKey}/comment",
        "POST /rest/api/3/issue/{issueIdOrKey}/comment",
        "GET /rest/api/3/issue/{issueIdOrKey}/comment/{id}",
        "PUT /rest/api/3/issue/{issueIdOrKey}/comment/{id}",
    ]


@responses.activate
def test_a_kept_slot_reads_comments_in_the_search_and_posts_the_first_one_with_no_look(jira_contract):
    """The handoff's demand slot: the feed's search asks for fields=comment; an issue with every
    comment listed and none of syncd's, with no earlier write in the store, is posted to at once."""
    from connectors.base import SlotRecord

    responses.get(f"{BASE}/rest/api/3/myself", json={"accountId": "1", "timeZone": "UTC"})
    quiet = {"comments": [], "maxResults": 0, "total": 0, "startAt": 0}
    raw = dict(ISSUE, fields=dict(ISSUE["fields"], comment=quiet))
    responses.post(f"{BASE}/rest/api/3/search/jql", json={"issues": [raw], "isLast": True})
    comment = {
        "id": "5",
        "author": {"accountId": "1"},
        "created": "2026-11-21T12:00:00.000+0000",
        "body": {"type": "doc", "version": 1, "content": []},
    }
    responses.post(f"{BASE}/rest/api/3/issue/10627/comment", status=201, json=comment)
    options = dict(url=BASE, email="bot@acme.test", api_token=SecretStr("contract-token"), projects=["ENG"])
    jira = JiraConnector("jira", JiraConfig(**options), sleep=lambda s: None, kept_slots=("demand",))
    list(jira.poll(None))
    assert jira.upsert_comment("10627", "Demand: 3 tickets", KEY, "demand", known=SlotRecord(written=False)).id == "5"
    assert "comment" in json.loads(responses.calls[1].request.body)["fields"]
    assert assert_calls_conform(responses.calls, jira_contract) == [
        "GET /rest/api/3/myself",
        "POST /rest/api/3/search/jql",
        "POST /rest/api/3/issue/{issueIdOrKey}/comment",
    ]


@responses.activate
def test_check_objects_requests_conform(jira_contract):
    """syncd check: Get Project per project, and the create metadata's issue types where a route creates."""
    from connectors.base import CheckTargets, RouteTarget

    responses.get(f"{BASE}/rest/api/3/project/ENG", json={"id": "10000", "key": "ENG", "name": "Engineering"})
    responses.get(f"{BASE}/rest/api/3/project/OPS", status=404, json={"errorMessages": ["No project"], "errors": {}})
    responses.get(
        f"{BASE}/rest/api/3/issue/createmeta/ENG/issuetypes",
        json={"issueTypes": [{"id": "1", "name": "Bug"}], "startAt": 0, "maxResults": 200, "total": 1},
    )
    found = connector().check_objects(CheckTargets(routes=(RouteTarget("r", "bugs", "ENG", creates=True),)))
    assert [f.where for f in found] == ["connectors.jira.projects"]
    assert assert_calls_conform(responses.calls, jira_contract) == [
        "GET /rest/api/3/project/{projectIdOrKey}",
        "GET /rest/api/3/project/{projectIdOrKey}",
        "GET /rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes",
    ]


def test_the_fakes_project_and_createmeta_answers_conform(jira_contract):
    """What the sandbox answers to those requests is what Jira's description allows."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    from connectors.jira.fake import SANDBOX_EMAIL, SANDBOX_TOKEN, JiraFake
    from syncd.sandbox.server import Sandbox

    fake = JiraFake(projects={"ENG": "Engineering"})
    fake.set_issue_types("ENG", ("Bug", "Task", "Epic"))
    answers = {}
    with Sandbox([fake]):
        for path in (
            "/rest/api/3/project/ENG",
            "/rest/api/3/issue/createmeta/ENG/issuetypes?startAt=1&maxResults=200",
            "/rest/api/3/project/NOPE",
        ):
            answer = requests.get(fake.base_url + path, auth=(SANDBOX_EMAIL, SANDBOX_TOKEN), timeout=5)
            request = answer.request.copy()
            request.url = "http://contract.invalid" + path
            jira_contract.validate(request)
            if answer.status_code == 200:
                jira_contract.openapi.validate_response(
                    RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(answer)
                )
            answers[path.split("?")[0]] = answer
    project = answers["/rest/api/3/project/ENG"].json()
    assert project["key"] == "ENG" and [t["name"] for t in project["issueTypes"]] == ["Bug", "Task", "Epic"]
    page = answers["/rest/api/3/issue/createmeta/ENG/issuetypes"].json()
    assert [t["name"] for t in page["issueTypes"]] == ["Task", "Epic"] and page["total"] == 3
    missing = answers["/rest/api/3/project/NOPE"]
    assert missing.status_code == 404 and missing.json()["errorMessages"]


def test_the_search_with_comments_and_the_fakes_answer_conform(jira_contract):
    """The conversation mirror's read: fields=comment in the feed's search; the fake's answer
    (comments with a restricted one) is what Jira's description allows, and the connector reads it."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    from connectors.jira.fake import SANDBOX_EMAIL, SANDBOX_TOKEN, JiraFake
    from syncd.sandbox.server import Sandbox

    fake = JiraFake(projects={"ENG": "Engineering"})
    issue = fake.create_issue("ENG", "Export fails")
    fake.comment(issue, "Fixed in 4.2", author="Ada Novak")
    fake.comment(issue, "Team only", author="Ada Novak", visibility={"type": "role", "value": "Developers"})
    with Sandbox([fake]):
        body = {"jql": "project in (ENG) ORDER BY updated ASC", "fields": ["summary", "updated", "comment"]}
        answer = requests.post(
            fake.base_url + "/rest/api/3/search/jql", json=body, auth=(SANDBOX_EMAIL, SANDBOX_TOKEN), timeout=5
        )
        request = answer.request.copy()
        request.url = "http://contract.invalid/rest/api/3/search/jql"
        jira_contract.validate(request)
        jira_contract.openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(answer))
        block = answer.json()["issues"][0]["fields"]["comment"]
        assert block["total"] == 2 and block["comments"][1]["visibility"] == {"type": "role", "value": "Developers"}

        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.get(f"{BASE}/rest/api/3/myself", json={"accountId": "1", "timeZone": "UTC"})
            raw = answer.json()["issues"][0]
            raw["fields"].update(ISSUE["fields"])
            rsps.post(f"{BASE}/rest/api/3/search/jql", json={"issues": [raw], "isLast": True})
            jira = connector()
            jira.read_comments = True
            remarks = [r for page in jira.poll(None) for r in page.remarks]
            assert [(r.body, r.private) for r in remarks] == [("Fixed in 4.2", False), ("Team only", True)]
            search = next(c for c in rsps.calls if c.request.url.endswith("/search/jql"))
            assert "comment" in json.loads(search.request.body)["fields"]
            assert_calls_conform(rsps.calls, jira_contract)
