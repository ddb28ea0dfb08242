"""The Jira fake over real HTTP on 127.0.0.1, on its own and with the connector."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from pydantic import SecretStr

from connectors.jira.connector import JiraConfig, JiraConnector
from connectors.jira.fake import SANDBOX_OAUTH_TOKEN, JiraFake
from syncd.errors import ApiError, AuthError, Gone, TransientError
from syncd.records import StateCategory
from syncd.sandbox.server import Sandbox
from syncd.writes import IssueDraft

START = datetime(2026, 11, 21, 17, 0, 10, tzinfo=timezone.utc)  # 12:00:10 in New York
KEY = "0123456789abcdef0123"


class Clock:
    """One clock for the fake and the connector: sleeping moves it, nothing waits."""

    def __init__(self, start: datetime = START):
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def connect(fake: JiraFake, clock: Clock, **overrides) -> JiraConnector:
    options = dict(
        url=fake.base_url,
        email=fake.email,
        api_token=SecretStr(fake.api_token),
        projects=["ENG", "OPS"],
        backfill_days=1,
    )
    options.update(overrides)
    return JiraConnector("jira", JiraConfig(**options), sleep=clock.sleep, clock=clock)


def api(fake: JiraFake, method: str, path: str, *, auth=True, **kwargs) -> requests.Response:
    return requests.request(
        method, fake.base_url + path, auth=(fake.email, fake.api_token) if auth else None, timeout=5, **kwargs
    )


def drain(connector: JiraConnector, cursor: str | None) -> tuple[list, str]:
    records = []
    for page in connector.poll(cursor):
        assert not page.rejected, page.rejected
        records.extend(page.records)
        cursor = page.cursor
    return records, cursor


# --- the wire format on its own ------------------------------------------------------------


def test_oauth_bearer_tokens_are_accepted(fake):
    good = requests.get(
        fake.base_url + "/rest/api/3/myself", timeout=5, headers={"Authorization": f"Bearer {SANDBOX_OAUTH_TOKEN}"}
    )
    bad = requests.get(fake.base_url + "/rest/api/3/myself", timeout=5, headers={"Authorization": "Bearer nope"})
    assert (good.status_code, bad.status_code) == (200, 401)


def test_basic_auth_is_required(fake):
    assert api(fake, "GET", "/rest/api/3/myself", auth=False).status_code == 401
    wrong = requests.get(fake.base_url + "/rest/api/3/myself", auth=(fake.email, "nope"), timeout=5)
    assert wrong.status_code == 401 and wrong.json()["errorMessages"]
    me = api(fake, "GET", "/rest/api/3/myself").json()
    assert me["emailAddress"] == fake.email and me["timeZone"] == "America/New_York"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_withdrawn_search_answers_410(fake, method):
    response = api(fake, method, "/rest/api/3/search", json={"jql": "project = ENG"})
    assert response.status_code == 410
    assert "/rest/api/3/search/jql" in response.json()["errorMessages"][0]


@pytest.mark.parametrize(
    "jql, message",
    [
        ("assignee = currentUser()", "Field 'assignee' does not exist"),
        ("project in (ENG, NOPE) ORDER BY updated ASC", "The value 'NOPE' does not exist for the field 'project'"),
        ('project = ENG AND updated >= "21/11/2026"', "Date value '21/11/2026' for field 'updated' is invalid"),
        ("project = ENG OR project = OPS", "expecting 'AND' or 'ORDER BY'"),
        ("project = ENG ORDER BY priority DESC", "orders by 'updated' or 'created' only"),
        ("ORDER BY updated", "Unbounded JQL"),
    ],
)
def test_jql_outside_the_subset_is_refused_like_jira(fake, jql, message):
    response = api(fake, "POST", "/rest/api/3/search/jql", json={"jql": jql})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"errorMessages", "errors"} and message in body["errorMessages"][0]


def test_search_pages_with_next_page_token_in_updated_order(fake, clock):
    for n in range(7):
        fake.create_issue("ENG" if n % 2 else "OPS", f"issue {n}", at=clock.advance(seconds=1))
    fake.transition("OPS-1", "In Progress", at=clock.advance(seconds=1))  # now the most recent
    jql = 'project in ("ENG", OPS) AND updated >= "2026/11/21 12:00" ORDER BY updated ASC'
    keys, token, calls = [], None, 0
    while True:
        body = {"jql": jql, "fields": ["summary", "updated"], "maxResults": 3}
        if token:
            body["nextPageToken"] = token
        page = api(fake, "POST", "/rest/api/3/search/jql", json=body).json()
        calls += 1
        keys += [i["key"] for i in page["issues"]]
        assert set(page["issues"][0]["fields"]) == {"summary", "updated"}
        if page["isLast"]:
            assert "nextPageToken" not in page
            break
        token = page["nextPageToken"]
    assert calls == 3 and keys[-1] == "OPS-1" and len(keys) == 7 == len(set(keys))
    foreign = api(fake, "POST", "/rest/api/3/search/jql", json={"jql": "project = ENG", "nextPageToken": token})
    assert foreign.status_code == 400


def test_updated_is_sent_with_milliseconds_and_the_users_offset(fake, clock):
    issue = fake.create_issue("ENG", "x", at=START + timedelta(microseconds=123456))
    body = api(fake, "GET", f"/rest/api/3/issue/{issue.key}").json()
    assert body["fields"]["updated"] == "2026-11-21T12:00:10.123-0500"
    assert body["fields"]["status"]["statusCategory"]["key"] == "new"
    assert body["id"] == issue.id and body["self"].endswith(f"/rest/api/3/issue/{issue.id}")


def test_jql_dates_are_read_in_the_users_time_zone(fake):
    fake.create_issue("ENG", "at 12:00:10 New York", at=START)

    def count(bound: str) -> int:
        jql = f'project = ENG AND updated >= "{bound}"'
        return len(api(fake, "POST", "/rest/api/3/search/jql", json={"jql": jql}).json()["issues"])

    assert count("2026/11/21 12:00") == 1
    assert count("2026/11/21 12:01") == 0
    assert count("2026/11/21 17:00") == 0  # the UTC wall time would be five hours late


def test_an_old_key_still_resolves_after_a_move(fake):
    issue = fake.create_issue("ENG", "moving")
    fake.move_project(issue, "OPS")
    body = api(fake, "GET", "/rest/api/3/issue/ENG-1").json()
    assert body["key"] == "OPS-1" and body["id"] == issue.id
    assert api(fake, "GET", "/rest/api/3/issue/ENG-99").status_code == 404


def test_comments_keep_their_properties(fake):
    issue = fake.create_issue("ENG", "x")
    doc = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "hi"}]}]}
    created = api(
        fake,
        "POST",
        f"/rest/api/3/issue/{issue.id}/comment",
        json={"body": doc, "properties": [{"key": "syncd", "value": {"key": KEY}}]},
    )
    assert created.status_code == 201 and created.json()["body"] == doc
    plain = api(fake, "GET", f"/rest/api/3/issue/{issue.key}/comment").json()
    assert "properties" not in plain["comments"][0]
    expanded = api(fake, "GET", f"/rest/api/3/issue/{issue.key}/comment", params={"expand": "properties"}).json()
    assert expanded["comments"][0]["properties"] == [{"key": "syncd", "value": {"key": KEY}}]
    bad = api(fake, "POST", f"/rest/api/3/issue/{issue.id}/comment", json={"body": "plain text is v2"})
    assert bad.status_code == 400 and bad.json()["errors"]


def test_remote_links_are_upserted_by_global_id(fake):
    issue = fake.create_issue("ENG", "x")
    link = {"globalId": "syncd:ticket=https://t/1", "object": {"url": "https://t/1", "title": "one"}}
    first = api(fake, "POST", f"/rest/api/3/issue/{issue.id}/remotelink", json=link)
    link["object"]["title"] = "renamed"
    second = api(fake, "POST", f"/rest/api/3/issue/{issue.id}/remotelink", json=link)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    links = api(fake, "GET", f"/rest/api/3/issue/{issue.id}/remotelink").json()
    assert [entry["object"]["title"] for entry in links] == ["renamed"]
    one = api(fake, "GET", f"/rest/api/3/issue/{issue.id}/remotelink", params={"globalId": "syncd:ticket=https://t/1"})
    assert one.json()["globalId"] == "syncd:ticket=https://t/1"
    missing_title = api(fake, "POST", f"/rest/api/3/issue/{issue.id}/remotelink", json={"object": {"url": "u"}})
    assert missing_title.status_code == 400 and "title" in missing_title.json()["errors"]


# --- the connector against the fake ------------------------------------------------------


def test_a_change_in_the_cursors_minute_is_neither_missed_nor_repeated(fake, clock):
    a = fake.create_issue("ENG", "A", at=START)  # 12:00:10 New York
    connector = connect(fake, clock)  # no time zone configured: read from /myself
    records, cursor = drain(connector, None)
    assert [r.key for r in records] == ["ENG-1"]

    b = fake.create_issue("ENG", "B", at=START + timedelta(seconds=40))  # the same minute
    fake.reset_counts()
    records, cursor = drain(connect(fake, clock), cursor)
    assert [r.key for r in records] == ["ENG-2"]
    assert fake.total_requests() == 1

    fake.reset_counts()
    records, cursor = drain(connect(fake, clock), cursor)
    assert records == [] and fake.total_requests() == 1  # idle: one request

    fake.transition(a, "Done", at=START + timedelta(seconds=45))
    fake.transition(b, "Done", resolution="Won't Do", at=START + timedelta(seconds=50))
    records, cursor = drain(connect(fake, clock), cursor)
    assert [(r.key, r.state) for r in records] == [
        ("ENG-1", StateCategory.COMPLETED),
        ("ENG-2", StateCategory.CANCELED),
    ]
    assert drain(connect(fake, clock), cursor)[0] == []


def test_many_changes_in_one_minute_across_pages(fake, clock):
    for n in range(12):
        fake.create_issue("ENG", f"issue {n}", at=START + timedelta(seconds=n))
    connector = connect(fake, clock, page_size=5)
    records, cursor = drain(connector, None)
    assert len(records) == 12 == len({r.ref.id for r in records})
    fake.create_issue("OPS", "late in the same minute", at=START + timedelta(seconds=30))
    records, cursor = drain(connector, cursor)
    assert [r.key for r in records] == ["OPS-1"]
    assert drain(connector, cursor)[0] == []


def test_a_moved_issue_keeps_its_identity(fake, clock):
    issue = fake.create_issue("ENG", "moving", at=START)
    connector = connect(fake, clock, time_zone="America/New_York")
    records, cursor = drain(connector, None)
    fake.move_project(issue, "OPS", at=START + timedelta(minutes=3))
    moved, cursor = drain(connector, cursor)
    assert [(r.ref.id, r.key, r.team) for r in moved] == [(records[0].ref.id, "OPS-1", "OPS")]
    assert connector.get_issue("ENG-1").key == "OPS-1"


def test_writes_land_once_and_are_found_by_their_marker(fake, clock):
    issue = fake.create_issue("ENG", "x", at=START)
    connector = connect(fake, clock, time_zone="UTC")
    assert connector.find_marker(issue.id, KEY) is False
    result = connector.add_comment(issue.id, "Ticket **#42** is linked: https://acme.zendesk.com/agent/tickets/42", KEY)
    assert result.updated_at == START and result.id
    assert connector.find_marker(issue.id, KEY) is True
    assert fake.get(issue.id).comments[0]["body"]["content"][0]["content"][1]["marks"] == [{"type": "strong"}]
    for title in ("#42 Login fails", "#42 Login fails on SSO"):
        connector.attach_ticket(issue.id, "https://acme.zendesk.com/agent/tickets/42", title, "Acme", KEY)
    assert [link["object"]["title"] for link in fake.get(issue.id).remotelinks] == ["#42 Login fails on SSO"]


def test_the_request_budget_answers_429_and_the_connector_waits(clock):
    fake = JiraFake(budget=2, budget_window=60, clock=clock)
    with Sandbox([fake]):
        fake.create_issue("ENG", "x", at=START)
        connector = connect(fake, clock, time_zone="UTC")
        connector.check()
        connector.check()
        drain(connector, None)
        assert clock.slept and 50 <= clock.slept[0] <= 60
        assert fake.counts["POST /rest/api/3/search/jql"] == 2  # one 429, then the answer


def test_injected_faults_and_refusals_surface_as_errors(fake, clock):
    fake.inject("503", "POST /rest/api/3/search/jql", count=2)
    assert drain(connect(fake, clock, time_zone="UTC"), None)[0] == []
    assert fake.counts["POST /rest/api/3/search/jql"] == 3
    with pytest.raises(AuthError):
        JiraConnector(
            "jira",
            JiraConfig(url=fake.base_url, email=fake.email, api_token=SecretStr("wrong"), projects=["ENG"]),
            sleep=clock.sleep,
        ).check()
    with pytest.raises(ApiError, match="does not exist for the field 'project'"):
        drain(connect(fake, clock, time_zone="UTC", projects=["NOPE"]), None)
    with pytest.raises(Gone):
        connect(fake, clock).http.request_json("GET", "/rest/api/3/search")


def test_an_issue_updated_while_paging_shifts_nothing(fake, clock):
    for n in range(4):
        fake.create_issue("ENG", f"issue {n}", at=START + timedelta(seconds=n))
    connector = connect(fake, clock, page_size=2, time_zone="UTC")
    feed = connector.poll(None)
    first = next(feed)
    assert [r.key for r in first.records] == ["ENG-1", "ENG-2"]
    fake.transition("ENG-1", "In Progress", at=START + timedelta(seconds=30))
    rest = [r.key for page in feed for r in page.records]
    assert rest == ["ENG-3", "ENG-4", "ENG-1"]


# --- the handoff: creating issues and one comment per slot --------------------------------------


def create_body(project: str = "ENG", **fields) -> dict:
    body = {
        "project": {"key": project},
        "summary": "Login fails",
        "issuetype": {"name": "Bug"},
        "description": {"type": "doc", "version": 1, "content": []},
    }
    body.update(fields)
    return {"fields": body, "properties": [{"key": "syncd", "value": {"key": KEY}}]}


def test_post_issue_creates_with_properties_and_refuses_like_jira(fake):
    created = api(fake, "POST", "/rest/api/3/issue", json=create_body(labels=["a-b"], priority={"name": "High"}))
    assert created.status_code == 201 and set(created.json()) == {"id", "key", "self"}
    issue = fake.get(created.json()["id"])
    assert (issue.key, issue.labels, issue.priority, issue.properties) == (
        "ENG-1",
        ["a-b"],
        "High",
        {"syncd": {"key": KEY}},
    )
    read = api(fake, "GET", f"/rest/api/3/issue/{issue.key}", params={"properties": "syncd", "fields": "labels"})
    assert read.json()["properties"] == {"syncd": {"key": KEY}} and read.json()["fields"] == {"labels": ["a-b"]}
    assert "properties" not in api(fake, "GET", f"/rest/api/3/issue/{issue.key}").json()
    fake.hide_create_field("OPS", "labels")
    refused = api(
        fake,
        "POST",
        "/rest/api/3/issue",
        json=create_body(
            "OPS", summary="", labels=["has space"], issuetype={"name": "Nope"}, priority={"name": "Urgent"}
        ),
    )
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"summary", "labels", "issuetype", "priority"}
    assert "not on the appropriate screen" in refused.json()["errors"]["labels"]
    assert api(fake, "POST", "/rest/api/3/issue", json=create_body("NOPE")).json()["errors"] == {
        "project": "valid project is required"
    }
    assert api(fake, "POST", "/rest/api/3/issue", json=create_body(labels=["a b"])).json()["errors"]["labels"]
    assert len(fake.issues) == 1


def test_search_lags_behind_new_issues_but_reads_by_key_do_not(clock):
    fake = JiraFake(clock=clock, search_lag=30)
    with Sandbox([fake]):
        fake.create_issue("ENG", "new", properties={"syncd": {"key": KEY}})
        query = {"jql": 'project = "ENG" ORDER BY created DESC', "properties": ["syncd"], "fields": ["created"]}
        assert api(fake, "POST", "/rest/api/3/search/jql", json=query).json()["issues"] == []
        assert api(fake, "GET", "/rest/api/3/issue/ENG-1").status_code == 200
        clock.advance(seconds=31)
        issues = api(fake, "POST", "/rest/api/3/search/jql", json=query).json()["issues"]
        assert [(i["key"], i["properties"]) for i in issues] == [("ENG-1", {"syncd": {"key": KEY}})]


def test_comments_are_read_one_by_one_and_edited_by_their_author_only(fake):
    issue = fake.create_issue("ENG", "x")
    ours = fake.comment(issue, "mine", properties=[{"key": "syncd", "value": {"key": KEY, "slot": "demand"}}])
    theirs = fake.comment(issue, "theirs", author="Ana Agent")
    path = f"/rest/api/3/issue/{issue.key}/comment"
    one = api(fake, "GET", f"{path}/{ours['id']}", params={"expand": "properties"}).json()
    assert one["properties"][0]["value"]["slot"] == "demand"
    new_body = {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "edited"}]}],
    }
    edited = api(
        fake,
        "PUT",
        f"{path}/{ours['id']}",
        json={"body": new_body, "properties": [{"key": "syncd", "value": {"key": "f" * 20, "slot": "demand"}}]},
    )
    assert edited.status_code == 200 and ours["body"] == new_body
    assert ours["properties"] == [{"key": "syncd", "value": {"key": "f" * 20, "slot": "demand"}}]
    assert api(fake, "PUT", f"{path}/{theirs['id']}", json={"body": new_body}).status_code == 403
    assert api(fake, "GET", f"{path}/99999").status_code == 404
    assert api(fake, "PUT", f"{path}/{ours['id']}", json={"body": "text"}).status_code == 400


def test_create_then_upsert_through_the_connector(fake, clock):
    connector = connect(fake, clock, time_zone="UTC", priorities={"sev1": "Highest"})
    fake.hide_create_field("ENG", "priority")
    draft = IssueDraft("Login fails", "From **#42**\n\n- sev1", ("support escalation",), "sev1")
    result = connector.create_issue("ENG", draft, KEY)
    issue = fake.get(result.id)
    assert result.updated_at == START and connector.get_issue(result.id).key == issue.key == "ENG-1"
    assert issue.labels == ["support-escalation"] and issue.priority == "Medium"
    assert fake.counts["POST /rest/api/3/issue"] == 2  # refused for priority, then created without it
    fake.reset_counts()
    first = connector.upsert_comment(result.id, "Demand: 3 tickets", KEY, "demand")
    connector.upsert_comment(result.id, "Demand: 3 tickets", "1" * 20, "demand")
    clock.advance(minutes=1)
    last = connector.upsert_comment(result.id, "Demand: 4 tickets", "2" * 20, "demand")
    assert first.id == last.id and last.updated_at == START + timedelta(minutes=1)
    assert len(issue.comments) == 1
    assert connector.find_marker(result.id, "2" * 20) and not connector.find_marker(result.id, KEY)
    assert fake.counts["POST /rest/api/3/issue/{issueIdOrKey}/comment"] == 1
    assert fake.counts["PUT /rest/api/3/issue/{issueIdOrKey}/comment/{id}"] == 1
    assert fake.counts["GET /rest/api/3/issue/{issueIdOrKey}/comment"] == 1 + 2  # one scan, two find_marker
    # A new process has no memory of the comment: it finds it again by the slot.
    again = connect(fake, clock, time_zone="UTC")
    assert again.upsert_comment(result.id, "Demand: 5 tickets", "3" * 20, "demand").id == first.id
    assert len(issue.comments) == 1


@pytest.mark.parametrize("fault, landed", [("timeout", True), ("truncate", True), ("reset", False)])
def test_a_create_whose_answer_is_lost_is_found_and_not_made_twice(clock, fault, landed):
    """The crash case: the create lands (or not), its answer is lost; search has not indexed it yet."""
    fake = JiraFake(clock=clock, search_lag=60)
    with Sandbox([fake]):
        for n in range(3):
            fake.create_issue("ENG", f"older {n}", at=START - timedelta(hours=1))
        fake.delete_issue("ENG-3")  # a gap just before the new issue's number
        connector = connect(fake, clock, time_zone="UTC")
        fake.inject(fault, "POST /rest/api/3/issue", count=1, delay=0)
        with pytest.raises(TransientError) as err:
            connector.create_issue("ENG", IssueDraft("Login fails", "body"), KEY)
        assert err.value.maybe_applied
        assert len(fake.issues_with_property("syncd", KEY)) == int(landed)
        recovered = connect(fake, clock, time_zone="UTC")  # after the crash: nothing remembered
        found = recovered.find_created("ENG", KEY)
        if landed:
            assert found == fake.issues_with_property("syncd", KEY)[0].id
        else:
            assert found is None
            recovered.create_issue("ENG", IssueDraft("Login fails", "body"), KEY)  # what delivery does then
        assert recovered.find_created("ENG", "f" * 20) is None
        assert len([i for i in fake.issues.values() if i.summary == "Login fails"]) == 1


def test_a_deleted_issue_answers_jiras_404_and_is_left_out_of_a_bulk_fetch(fake, clock):
    kept = fake.create_issue("ENG", "Kept")
    gone = fake.create_issue("ENG", "Gone")
    fake.delete_issue(gone.key)
    answer = api(fake, "GET", f"/rest/api/3/issue/{gone.key}")
    assert answer.status_code == 404
    assert answer.json()["errorMessages"] == ["Issue does not exist or you do not have permission to see it."]
    body = api(
        fake, "POST", "/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": [kept.id, gone.id], "fields": ["summary"]}
    ).json()
    assert [i["id"] for i in body["issues"]] == [kept.id] and body["issueErrors"] == []
    assert (
        api(
            fake, "POST", "/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": [str(n) for n in range(101)]}
        ).status_code
        == 400
    )
    connector = connect(fake, clock)
    with pytest.raises(Gone):
        connector.add_comment(gone.id, "hello", "k" * 20)
    presence = connector.presence([kept.id, gone.id], {})
    assert set(presence.found) == {kept.id} and set(presence.gone) == {gone.id}
