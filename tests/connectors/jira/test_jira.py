"""The Jira connector against mocked HTTP (``responses``) and the recorded payloads in ../shared."""

from __future__ import annotations

import base64
import copy
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import responses
from pydantic import SecretStr, ValidationError

from connectors.jira.adf import validate_adf
from connectors.jira.connector import ISSUE_FIELDS, JiraConfig, JiraConnector, ticket_global_id
from syncd.errors import AuthError, ConfigError, Gone, NotFound, PayloadError
from syncd.records import StateCategory

URL = "https://acme.atlassian.net"
TOKEN = "ATATT3xFfGF0-SECRET-TOKEN"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
SEARCH = f"{URL}/rest/api/3/search/jql"
KEY = "0123456789abcdef0123"


def make(**overrides) -> JiraConnector:
    options = dict(
        url=URL, email="bot@acme.test", api_token=SecretStr(TOKEN), projects=["ENG"], time_zone="Europe/Paris"
    )
    options.update(overrides)
    return JiraConnector("jira", JiraConfig(**options), sleep=lambda s: None, clock=lambda: NOW)


def load(fixtures_dir, name: str):
    return json.loads((fixtures_dir / "jira" / name).read_text())


@pytest.fixture
def airbyte_issue(fixtures_dir) -> dict:
    return load(fixtures_dir, "airbyte-source-jira/issues.json")["issues"][0]


def issue_like(
    template: dict,
    ident: str,
    key: str,
    updated: str,
    *,
    category: str = "new",
    status: str = "To Do",
    resolution: str | None = None,
) -> dict:
    """A real v3 issue object (the airbyte recording) with a few fields changed."""
    issue = copy.deepcopy(template)
    issue["id"], issue["key"] = ident, key
    fields = issue["fields"]
    fields["updated"] = updated
    fields["status"]["name"] = status
    fields["status"]["statusCategory"]["key"] = category
    fields["resolution"] = {"name": resolution} if resolution else None
    fields["project"]["key"] = key.split("-")[0]
    return issue


def search_reply(issues: list[dict], token: str | None = None) -> dict:
    body: dict = {"issues": issues, "isLast": token is None}
    if token:
        body["nextPageToken"] = token
    return body


def sent(call) -> dict:
    return json.loads(call.request.body)


# --- config --------------------------------------------------------------------------


def test_config_requires_credentials_projects_and_a_real_time_zone():
    with pytest.raises(ValidationError, match="credentials missing"):
        JiraConfig(url=URL, email="a@b.c", projects=["ENG"])
    with pytest.raises(ValidationError, match="email is required"):
        JiraConfig(url=URL, api_token=SecretStr("x"), projects=["ENG"])
    with pytest.raises(ValidationError, match="not Jira project keys"):
        JiraConfig(url=URL, email="a@b.c", api_token=SecretStr("x"), projects=["eng"])
    with pytest.raises(ValidationError):
        JiraConfig(url=URL, email="a@b.c", api_token=SecretStr("x"), projects=[])
    with pytest.raises(ValidationError, match="unknown time zone"):
        JiraConfig(url=URL, email="a@b.c", api_token=SecretStr("x"), projects=["ENG"], time_zone="Mars/Olympus")
    assert JiraConfig(url=URL, oauth_token=SecretStr("x"), projects=["ENG"]).overlap_minutes == 2


def test_token_file_is_read_and_a_missing_one_is_named(tmp_path):
    path = tmp_path / "jira.token"
    path.write_text(TOKEN + "\n")
    connector = make(api_token=None, api_token_file=str(path))
    assert connector.http.session.auth.password == TOKEN
    with pytest.raises(ConfigError) as err:
        make(api_token=None, api_token_file=str(tmp_path / "absent"))
    assert "connectors.jira.api_token_file" in str(err.value) and "absent" in str(err.value)
    assert TOKEN not in str(err.value)


@responses.activate
def test_check_uses_myself_with_basic_auth(fixtures_dir):
    responses.get(f"{URL}/rest/api/3/myself", json=load(fixtures_dir, "jira-cli-testdata/myself.json"))
    assert make().check() == "user@test.com"
    auth = responses.calls[0].request.headers["Authorization"]
    assert auth == "Basic " + base64.b64encode(f"bot@acme.test:{TOKEN}".encode()).decode()


@responses.activate
def test_refused_credentials_name_the_problem_without_the_secret():
    responses.get(
        f"{URL}/rest/api/3/myself", status=401, json={"errorMessages": ["You are not authenticated."], "errors": {}}
    )
    with pytest.raises(AuthError) as err:
        make().check()
    assert "401" in str(err.value) and TOKEN not in str(err.value)


# --- normalisation ------------------------------------------------------------------------


def test_normalises_a_real_v3_issue(airbyte_issue):
    issue = make(projects=["TESTKEY13"]).normalise(airbyte_issue)
    assert issue.ref.connector == "jira" and issue.ref.id == "10627"
    assert issue.key == "TESTKEY13-1"
    assert issue.url == f"{URL}/browse/TESTKEY13-1"
    assert issue.title == "My Summary"
    assert issue.state is StateCategory.UNSTARTED and issue.state_name == "To Do"
    assert issue.assignee == "integration test"
    assert issue.team == "TESTKEY13" and issue.resolution is None and issue.public is False
    assert issue.updated_at == datetime(2022, 12, 8, 10, 22, 18, 889000, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "category, resolution, state",
    [
        ("indeterminate", None, StateCategory.STARTED),
        ("done", "Done", StateCategory.COMPLETED),
        ("done", "Won't Do", StateCategory.CANCELED),
        ("done", "Duplicate", StateCategory.CANCELED),
    ],
)
def test_state_comes_from_the_status_category_and_resolution(airbyte_issue, category, resolution, state):
    raw = issue_like(
        airbyte_issue,
        "1",
        "ENG-1",
        "2026-11-21T12:00:00.000+0000",
        category=category,
        status="Whatever the workflow says",
        resolution=resolution,
    )
    issue = make().normalise(raw)
    assert issue.state is state and issue.state_name == "Whatever the workflow says"
    assert issue.resolution == resolution


@pytest.mark.parametrize(
    "category, resolution, status",
    [
        ("indeterminate", None, "In Progress"),
        ("done", "Won't Do", "Won't do"),
    ],
)
def test_jira_category_from_the_record(airbyte_issue, category, resolution, status):
    raw = issue_like(
        airbyte_issue,
        "1",
        "ENG-1",
        "2026-11-21T12:00:00.000+0000",
        category=category,
        status=status,
        resolution=resolution,
    )
    issue = make().normalise(raw)
    assert issue.native == {"category": category, "status": status}
    assert JiraConnector.state_rule_model.conditions() == tuple(issue.native)


def test_configurable_cancel_resolutions(airbyte_issue):
    raw = issue_like(
        airbyte_issue, "1", "ENG-1", "2026-11-21T12:00:00.000+0000", category="done", resolution="Obsolete"
    )
    assert make().normalise(raw).state is StateCategory.COMPLETED
    assert make(cancel_resolutions=["Obsolete"]).normalise(raw).state is StateCategory.CANCELED


def test_trimmed_recordings_are_rejected_with_a_reason(fixtures_dir):
    raw = load(fixtures_dir, "jira-cli-testdata/issue.json")  # no id, no status category
    with pytest.raises(PayloadError, match=r"issue TEST-1: no id"):
        make().normalise(raw)
    raw["id"] = "10001"
    with pytest.raises(PayloadError, match=r"statusCategory"):
        make().normalise(raw)


def test_link_patterns_find_configured_projects_only():
    patterns = [re.compile(p) for p in make(projects=["ENG", "OPS"]).link_patterns()]
    text = (
        f"see {URL}/browse/ENG-12 and OPS-3, not XENG-4, not ENG-0, not ENG-5a, "
        f"not HR-2, not https://other.atlassian.net/browse/HR-9"
    )
    found = [m.group("ref") for p in patterns for m in p.finditer(text)]
    assert sorted(set(found)) == ["ENG-12", "OPS-3"]


# --- polling ---------------------------------------------------------------------------------


@responses.activate
def test_first_poll_asks_for_only_the_fields_it_needs_from_the_backfill_window():
    responses.post(SEARCH, json=search_reply([]))
    pages = list(make(projects=["ENG", "OPS"], backfill_days=30).poll(None))
    assert len(pages) == 1 and pages[0].done and pages[0].records == []
    body = sent(responses.calls[0])
    # 2026-10-22 12:00 UTC is 14:00 in Paris (CEST, before the October change); less 2 minutes.
    assert body["jql"] == 'project in ("ENG", "OPS") AND updated >= "2026/10/22 13:58" ORDER BY updated ASC'
    assert body["fields"] == list(ISSUE_FIELDS)
    assert body["maxResults"] == 100 and "nextPageToken" not in body


@responses.activate
def test_paging_follows_next_page_token_of_the_recordings(fixtures_dir):
    for name in ("search_page1.json", "search_page2_mid.json", "search_page3.json"):
        responses.post(SEARCH, json=load(fixtures_dir, f"jira-cli-testdata/{name}"))
    pages = list(make(projects=["TEST"]).poll(None))
    assert [p.done for p in pages] == [False, False, True]
    assert [sent(c).get("nextPageToken") for c in responses.calls] == [None, "token-page-2", "token-page-3"]
    assert len({sent(c)["jql"] for c in responses.calls}) == 1
    # jira-cli's trimmed issues have no id: each is quarantined by key, none crash the poll.
    assert [r.record_id for p in pages for r in p.rejected] == ["TEST-1", "TEST-2", "TEST-3", "TEST-4"]
    assert all("no id" in r.reason for p in pages for r in p.rejected)
    assert json.loads(pages[0].cursor)["token"] == "token-page-2"
    assert "token" not in json.loads(pages[-1].cursor)


@responses.activate
def test_paging_the_recordings_with_ids_and_categories(fixtures_dir):
    categories = {"To Do": "new", "In Progress": "indeterminate", "Done": "done"}
    for n, name in enumerate(("search_page1.json", "search_page2_mid.json", "search_page3.json")):
        body = load(fixtures_dir, f"jira-cli-testdata/{name}")
        for issue in body["issues"]:
            issue["id"] = str(10000 + int(issue["key"].split("-")[1]))
            issue["fields"]["status"]["statusCategory"] = {"key": categories[issue["fields"]["status"]["name"]]}
        responses.post(SEARCH, json=body)
    pages = list(make(projects=["TEST"]).poll(None))
    records = [r for p in pages for r in p.records]
    assert [r.key for r in records] == ["TEST-1", "TEST-2", "TEST-3", "TEST-4"]
    assert [r.state for r in records] == [
        StateCategory.UNSTARTED,
        StateCategory.STARTED,
        StateCategory.COMPLETED,
        StateCategory.STARTED,
    ]
    assert records[2].assignee == "Person A"
    assert records[0].updated_at == datetime(2020, 12, 3, 13, 5, 20, 974000, tzinfo=timezone.utc)


@responses.activate
def test_overlap_is_reread_and_deduplicated_by_id_and_updated(airbyte_issue):
    a = issue_like(airbyte_issue, "1", "ENG-1", "2026-11-21T13:05:10.000+0100")
    b = issue_like(airbyte_issue, "2", "ENG-2", "2026-11-21T12:05:40.123+0000")
    c = issue_like(airbyte_issue, "3", "ENG-3", "2026-11-21T12:05:50.000+0000")
    b_again = issue_like(
        airbyte_issue, "2", "ENG-2", "2026-11-21T12:09:00.000+0000", category="done", resolution="Done"
    )
    connector = make()
    responses.post(SEARCH, json=search_reply([a, b]))
    first = list(connector.poll(None))
    assert [r.key for r in first[0].records] == ["ENG-1", "ENG-2"]

    # The next poll re-reads from the cursor's minute less the overlap (Paris time) ...
    responses.replace(responses.POST, SEARCH, json=search_reply([a, b, c]))
    second = list(connector.poll(first[-1].cursor))
    assert sent(responses.calls[1])["jql"].endswith('updated >= "2026/11/21 13:03" ORDER BY updated ASC')
    # ... and what it had delivered is not delivered again, in any offset it comes in.
    assert [r.key for r in second[0].records] == ["ENG-3"]

    responses.replace(responses.POST, SEARCH, json=search_reply([c, b_again]))
    third = list(connector.poll(second[-1].cursor))
    assert [(r.key, r.state) for r in third[0].records] == [("ENG-2", StateCategory.COMPLETED)]
    state = json.loads(third[-1].cursor)
    assert state["since"] == "2026-11-21T12:09:00+00:00"
    assert state["seen"] == [["2", "2026-11-21T12:09:00+00:00"]]  # older pairs fell out of the window


@responses.activate
def test_an_idle_poll_is_exactly_one_request(airbyte_issue):
    a = issue_like(airbyte_issue, "1", "ENG-1", "2026-11-21T12:05:10.000+0000")
    responses.post(SEARCH, json=search_reply([a]))
    cursor = list(make().poll(None))[-1].cursor
    responses.calls.reset()
    # A fresh process (no time zone configured): the cursor remembers it, so no /myself.
    pages = list(make(time_zone=None).poll(cursor))
    assert len(responses.calls) == 1
    assert pages[0].records == [] and pages[0].done
    assert json.loads(pages[0].cursor)["since"] == json.loads(cursor)["since"]


@responses.activate
def test_time_zone_is_read_from_myself_once_when_not_configured(fixtures_dir):
    me = dict(load(fixtures_dir, "jira-cli-testdata/myself.json"), timeZone="America/Los_Angeles")
    responses.get(f"{URL}/rest/api/3/myself", json=me)
    responses.post(SEARCH, json=search_reply([]))
    connector = make(time_zone=None, backfill_days=0, overlap_minutes=5)
    cursor = list(connector.poll(None))[-1].cursor
    list(connector.poll(cursor))
    assert [c.request.method for c in responses.calls] == ["GET", "POST", "POST"]
    # 12:00 UTC is 04:00 in Los Angeles.
    assert '"2026/11/21 03:55"' in sent(responses.calls[1])["jql"]
    assert json.loads(cursor)["tz"] == "America/Los_Angeles"


def test_lower_bound_steps_back_over_a_repeated_hour():
    connector = make(time_zone="Europe/Paris", overlap_minutes=1)
    # 00:31 UTC on 2026-10-25 is 02:31 CEST, the first of two 02:31s in Paris.
    since = datetime(2026, 10, 25, 0, 31, 30, tzinfo=timezone.utc)
    from zoneinfo import ZoneInfo

    bound = connector.jql_lower_bound(since, ZoneInfo("Europe/Paris"))
    later_reading = datetime.strptime(bound, "%Y/%m/%d %H:%M").replace(tzinfo=ZoneInfo("Europe/Paris"), fold=1)
    assert later_reading.astimezone(timezone.utc) <= since - timedelta(minutes=1)


@responses.activate
def test_an_interrupted_poll_resumes_from_its_page_token(airbyte_issue):
    a = issue_like(airbyte_issue, "1", "ENG-1", "2026-11-21T12:05:10.000+0000")
    b = issue_like(airbyte_issue, "2", "ENG-2", "2026-11-21T12:06:10.000+0000")
    responses.post(SEARCH, json=search_reply([a], token="page-2"))
    feed = make().poll(None)
    first = next(feed)  # the engine commits this page, then the process dies
    assert not first.done
    responses.calls.reset()
    responses.replace(responses.POST, SEARCH, json=search_reply([b]))
    pages = list(make().poll(first.cursor))
    assert sent(responses.calls[0])["nextPageToken"] == "page-2"
    assert sent(responses.calls[0])["jql"] == json.loads(first.cursor)["from"].join(
        ['project in ("ENG") AND updated >= "', '" ORDER BY updated ASC']
    )
    assert [r.key for r in pages[0].records] == ["ENG-2"]


@responses.activate
def test_an_expired_page_token_falls_back_to_the_cursor(airbyte_issue):
    a = issue_like(airbyte_issue, "1", "ENG-1", "2026-11-21T12:05:10.000+0000")
    b = issue_like(airbyte_issue, "2", "ENG-2", "2026-11-21T12:06:10.000+0000")
    cursor = json.dumps(
        {
            "since": "2026-11-21T12:05:10+00:00",
            "seen": [["1", "2026-11-21T12:05:10+00:00"]],
            "tz": "Europe/Paris",
            "from": "2026/10/01 00:00",
            "token": "stale",
        }
    )
    responses.post(
        SEARCH, status=400, json={"errorMessages": ["The provided next page token is invalid."], "errors": {}}
    )
    responses.post(SEARCH, json=search_reply([a, b]))
    pages = list(make().poll(cursor))
    assert [sent(c).get("nextPageToken") for c in responses.calls] == ["stale", None]
    assert '"2026/11/21 13:03"' in sent(responses.calls[1])["jql"]
    assert [r.key for r in pages[0].records] == ["ENG-2"]


@responses.activate
def test_a_response_of_the_wrong_shape_is_a_payload_error():
    responses.post(SEARCH, json={"issues": "?", "isLast": True})
    with pytest.raises(PayloadError, match="issues"):
        list(make().poll(None))


@responses.activate
def test_rate_limits_are_obeyed(airbyte_issue):
    slept: list[float] = []
    connector = JiraConnector("jira", make().config, sleep=slept.append, clock=lambda: NOW)
    responses.post(SEARCH, status=429, headers={"Retry-After": "7", "X-RateLimit-Remaining": "0"}, json={})
    responses.post(SEARCH, status=503, json={})
    responses.post(SEARCH, json=search_reply([]), headers={"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "99"})
    pages = list(connector.poll(None))
    assert pages[0].done and len(responses.calls) == 3
    assert slept[0] == 7.0 and len(slept) == 2
    assert connector.http.rate.remaining == 99


# --- reads and writes by issue --------------------------------------------------------------


@responses.activate
def test_get_issue_by_an_old_key_follows_the_move(airbyte_issue):
    moved = issue_like(airbyte_issue, "10627", "OPS-4", "2026-11-21T12:00:00.000+0000")
    responses.get(f"{URL}/rest/api/3/issue/ENG-9", json=moved)
    issue = make(projects=["ENG", "OPS"]).get_issue("ENG-9")
    assert issue.ref.id == "10627" and issue.key == "OPS-4" and issue.team == "OPS"
    assert issue.url == f"{URL}/browse/OPS-4"
    assert responses.calls[0].request.params == {"fields": ",".join(ISSUE_FIELDS)}


@responses.activate
def test_get_issue_not_found_and_refs_that_are_not_issues():
    responses.get(
        f"{URL}/rest/api/3/issue/ENG-404",
        status=404,
        json={"errorMessages": ["Issue does not exist or you do not have permission to see it."]},
    )
    # Jira's answer for a deleted issue (and for one hidden from the account): Gone.
    with pytest.raises(Gone, match="deleted, or no longer visible"):
        make().get_issue("ENG-404")
    with pytest.raises(NotFound, match="not a Jira issue id or key"):
        make().get_issue("../../admin")
    assert len(responses.calls) == 1


@responses.activate
def test_a_404_that_is_not_jiras_issue_answer_is_not_a_deletion():
    # A proxy's page or a wrong base URL must not end every link.
    responses.get(f"{URL}/rest/api/3/issue/ENG-5", status=404, body="<html>Not Found</html>")
    responses.post(
        f"{URL}/rest/api/3/issue/ENG-5/comment",
        status=404,
        json={"errorMessages": ["Issue does not exist or you do not have permission to see it."]},
    )
    with pytest.raises(NotFound) as caught:
        make().get_issue("ENG-5")
    assert not isinstance(caught.value, Gone)
    with pytest.raises(Gone):
        make().add_comment("ENG-5", "hello", KEY)


@responses.activate
def test_presence_reads_100_ids_a_request_and_calls_absent_ones_gone():
    def answer(request):
        ids = json.loads(request.body)["issueIdsOrKeys"]
        present = [i for i in ids if int(i) % 7]  # every seventh id is deleted
        issues = [
            {
                "id": i,
                "key": f"ENG-{i}",
                "fields": {
                    "summary": "x",
                    "updated": "2026-11-21T12:00:00.000+0000",
                    "resolution": None,
                    "assignee": None,
                    "status": {"name": "To Do", "statusCategory": {"key": "new"}},
                    "project": {"key": "OPS" if i == "10001" else "ENG"},
                },
            }
            for i in present
        ]
        errors = [{"id": "10002", "errorMessage": "try again"}] if "10002" in ids else []
        return 200, {}, json.dumps({"issues": [x for x in issues if x["id"] != "10002"], "issueErrors": errors})

    responses.add_callback(responses.POST, f"{URL}/rest/api/3/issue/bulkfetch", callback=answer)
    ids = [str(10000 + n) for n in range(250)]
    connector = make()
    found = connector.presence(ids, {})
    assert found.requests == len(responses.calls) == 3
    assert [len(json.loads(c.request.body)["issueIdsOrKeys"]) for c in responses.calls] == [100, 100, 50]
    assert set(found.gone) == {i for i in ids if int(i) % 7 == 0}
    assert "10002" not in found.gone and "10002" not in found.found  # a retriable error: neither
    assert not connector.follows(found.found["10001"]) and connector.follows(found.found["10004"])


@responses.activate
def test_add_comment_sends_adf_and_the_marker_as_a_property(fixtures_dir):
    recorded = load(fixtures_dir, "airbyte-source-jira/issue_comments.json")["comments"][0]
    responses.post(f"{URL}/rest/api/3/issue/10627/comment", json=recorded, status=201)
    result = make().add_comment("10627", "Ticket #42 is **linked**.\n\n- customer: Acme", KEY)
    body = sent(responses.calls[0])
    assert validate_adf(body["body"]) == []
    assert body["properties"] == [{"key": "syncd", "value": {"key": KEY}}]
    assert body["body"]["content"][1]["type"] == "bulletList"
    assert result.id == "10755"
    assert result.updated_at == datetime(2022, 5, 17, 11, 6, 55, 76000, tzinfo=timezone.utc)


@responses.activate
def test_attach_ticket_posts_a_remote_link_keyed_by_the_ticket_url(fixtures_dir):
    recorded = load(fixtures_dir, "atlassian-python-api/POST_rest_api_2_issue_FOO-123_remotelink.json")
    responses.post(f"{URL}/rest/api/3/issue/10627/remotelink", json=recorded[1]["response"], status=201)
    responses.post(f"{URL}/rest/api/3/issue/10627/remotelink", json=recorded[1]["response"], status=200)
    ticket = "https://acme.zendesk.com/agent/tickets/42"
    connector = make(ticket_icon_url="https://acme.zendesk.com/favicon.ico")
    first = connector.attach_ticket("10627", ticket, "#42 Login fails", "Acme · urgent", KEY)
    connector.attach_ticket("10627", ticket, "#42 Login fails (renamed)", "Acme · urgent", KEY)
    bodies = [sent(c) for c in responses.calls]
    assert bodies[0]["globalId"] == bodies[1]["globalId"] == f"syncd:ticket={ticket}"
    assert bodies[0]["application"] == {"type": "syncd", "name": "syncd"}
    assert bodies[0]["object"] == {
        "url": ticket,
        "title": "#42 Login fails",
        "summary": "Acme · urgent",
        "icon": {"title": "Helpdesk ticket", "url16x16": "https://acme.zendesk.com/favicon.ico"},
    }
    assert first.id == "10000"


def test_global_id_stays_within_jiras_limit():
    long_url = "https://acme.zendesk.com/agent/tickets/42?" + "x" * 300
    gid = ticket_global_id(long_url)
    assert len(gid) <= 255 and gid == ticket_global_id(long_url) != ticket_global_id(long_url + "y")


@responses.activate
def test_find_marker_reads_comment_properties_in_one_request(fixtures_dir):
    page = load(fixtures_dir, "airbyte-source-jira/issue_comments.json")
    page.update(startAt=0, maxResults=100, total=2)
    page["comments"][1]["properties"] = [{"key": "syncd", "value": {"key": KEY}}]
    responses.get(f"{URL}/rest/api/3/issue/10627/comment", json=page)
    connector = make()
    assert connector.find_marker("10627", KEY) is True
    assert connector.find_marker("10627", "f" * 20) is False
    assert len(responses.calls) == 2
    assert responses.calls[0].request.params == {
        "expand": "properties",
        "orderBy": "-created",
        "startAt": "0",
        "maxResults": "100",
    }


@responses.activate
def test_find_marker_pages_through_long_threads(fixtures_dir):
    recorded = load(fixtures_dir, "atlassian-python-api/GET_rest_api_2_issue_FOO-123_comment.json")["response"]
    first = dict(recorded, total=102, maxResults=100, comments=recorded["comments"] * 50)
    second = dict(recorded, startAt=100, total=102, maxResults=100)
    responses.get(f"{URL}/rest/api/3/issue/10000/comment", json=first)
    responses.get(f"{URL}/rest/api/3/issue/10000/comment", json=second)
    assert make().find_marker("10000", KEY) is False
    assert [c.request.params["startAt"] for c in responses.calls] == ["0", "100"]
