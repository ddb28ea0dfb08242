"""The Linear fake, driven over real HTTP with plain requests; plus seed data and the runner."""

from __future__ import annotations

import io
import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    build_schema,
)

from connectors.linear.fake import SANDBOX_API_KEY, SANDBOX_OAUTH_TOKEN, LinearFake, load_schema
from syncd.sandbox.runner import build_sandbox, serve
from syncd.sandbox.server import Sandbox
from tests.connectors.conftest import Clock


@pytest.fixture
def fake(clock):
    lin = LinearFake(clock=clock)
    lin.add_team("ENG", "Engineering")
    lin.add_team("APP", "Apps")
    lin.ada = lin.add_user("Ada Novak", "ada@product.example")
    with Sandbox([lin]):
        yield lin


@pytest.fixture
def gql(fake):
    def call(
        query: str, variables: dict | None = None, *, operation: str | None = None, auth: str = SANDBOX_API_KEY
    ) -> requests.Response:
        body = {"query": query, "variables": variables or {}}
        if operation:
            body["operationName"] = operation
        return requests.post(fake.base_url + "/graphql", json=body, headers={"Authorization": auth}, timeout=5)

    return call


def data(response: requests.Response) -> dict:
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


ISSUES = """
query SyncdIssues($filter: IssueFilter, $first: Int, $after: String, $orderBy: PaginationOrderBy,
                  $sort: [IssueSortInput!]) {
  issues(filter: $filter, first: $first, after: $after, orderBy: $orderBy, sort: $sort) {
    nodes { id identifier title updatedAt state { name type } team { key } assignee { email } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def make_issues(fake: LinearFake, clock: Clock, n: int, team: str = "ENG") -> list[dict]:
    out = []
    for i in range(n):
        clock.advance(1)
        out.append(fake.create_issue(team, f"Issue {i}"))
    return out


# -- queries ----------------------------------------------------------------------------


def test_issues_feed_filters_orders_and_pages(fake, gql, clock):
    issues = make_issues(fake, clock, 5) + make_issues(fake, clock, 2, team="APP")
    since = issues[0]["updatedAt"]
    titles, cursor = [], None
    while True:
        page = data(
            gql(
                ISSUES,
                {
                    "filter": {"updatedAt": {"gt": since}, "team": {"key": {"eq": "ENG"}}},
                    "first": 2,
                    "after": cursor,
                    "orderBy": "updatedAt",
                },
            )
        )["issues"]
        titles += [n["title"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        cursor = page["pageInfo"]["endCursor"]
    assert titles == ["Issue 4", "Issue 3", "Issue 2", "Issue 1"]  # most recently updated first
    asc = data(gql(ISSUES, {"sort": [{"updatedAt": {"order": "Ascending"}}], "first": 3}))["issues"]
    assert [n["identifier"] for n in asc["nodes"]] == ["ENG-1", "ENG-2", "ENG-3"]


def test_default_page_is_50(fake, gql, clock):
    make_issues(fake, clock, 55)
    page = data(gql(ISSUES))["issues"]
    assert len(page["nodes"]) == 50 and page["pageInfo"]["hasNextPage"] is True
    rest = data(gql(ISSUES, {"after": page["pageInfo"]["endCursor"]}))["issues"]
    assert len(rest["nodes"]) == 5 and rest["pageInfo"]["hasNextPage"] is False


def test_an_issue_updated_while_paging_is_neither_lost_nor_repeated_on_later_pages(fake, gql, clock):
    make_issues(fake, clock, 4)
    first = data(gql(ISSUES, {"first": 2, "sort": [{"updatedAt": {"order": "Ascending"}}]}))["issues"]
    clock.advance(5)
    fake.move_to_state("ENG-1", "In Progress")  # already read; moves to the end of the order
    rest = data(
        gql(
            ISSUES,
            {"first": 10, "after": first["pageInfo"]["endCursor"], "sort": [{"updatedAt": {"order": "Ascending"}}]},
        )
    )["issues"]
    assert [n["identifier"] for n in rest["nodes"]] == ["ENG-3", "ENG-4", "ENG-1"]


def test_filters_on_state_type_assignee_and_or(fake, gql, clock):
    a, b, c = make_issues(fake, clock, 3)
    fake.move_to_state(a, "Done")
    fake.assign(b, fake.ada)
    done = data(gql(ISSUES, {"filter": {"state": {"type": {"in": ["completed", "canceled"]}}}}))["issues"]["nodes"]
    assert [n["id"] for n in done] == [a["id"]]
    unassigned = data(gql(ISSUES, {"filter": {"assignee": {"null": True}}}))["issues"]["nodes"]
    assert {n["id"] for n in unassigned} == {a["id"], c["id"]}
    either = data(
        gql(
            ISSUES,
            {
                "filter": {
                    "or": [
                        {"assignee": {"email": {"eq": "ada@product.example"}}},
                        {"title": {"containsIgnoreCase": "issue 2"}},
                    ]
                }
            },
        )
    )
    assert {n["id"] for n in either["issues"]["nodes"]} == {b["id"], c["id"]}
    recent = data(gql(ISSUES, {"filter": {"createdAt": {"gt": "-PT1H"}}}))  # durations work too
    assert len(recent["issues"]["nodes"]) == 3


def test_issue_by_identifier_and_by_old_identifier_after_a_team_move(fake, gql, clock):
    issue = make_issues(fake, clock, 1)[0]
    query = "query SyncdIssue($id: String!) { issue(id: $id) { id identifier team { key } state { type } } }"
    assert data(gql(query, {"id": "ENG-1"}))["issue"]["id"] == issue["id"]
    fake.move_team(issue, "APP")
    for ref in (issue["id"], "ENG-1", "APP-1"):
        got = data(gql(query, {"id": ref}))["issue"]
        assert got == {"id": issue["id"], "identifier": "APP-1", "team": {"key": "APP"}, "state": {"type": "backlog"}}


def test_viewer_teams_and_workflow_states(fake, gql):
    got = data(
        gql(
            "{ viewer { email admin organization { urlKey } } teams { nodes { key states(first: 10) "
            "{ nodes { name type } } } } }"
        )
    )
    assert got["viewer"] == {"email": "syncd-bot@sandbox.example", "admin": True, "organization": {"urlKey": "sandbox"}}
    eng = next(t for t in got["teams"]["nodes"] if t["key"] == "ENG")
    assert {s["type"] for s in eng["states"]["nodes"]} == {
        "triage",
        "backlog",
        "unstarted",
        "started",
        "completed",
        "canceled",
    }
    done = data(gql('{ workflowStates(filter: {name: {eq: "Done"}, team: {key: {eq: "APP"}}}) { nodes { type } } }'))
    assert done["workflowStates"]["nodes"] == [{"type": "completed"}]


# -- mutations ---------------------------------------------------------------------------


def test_comment_create_is_written_as_the_viewer_and_bumps_the_issue(fake, gql, clock):
    issue = make_issues(fake, clock, 1)[0]
    clock.advance(30)
    got = data(
        gql(
            "mutation SyncdComment($input: CommentCreateInput!) { commentCreate(input: $input) "
            "{ success lastSyncId comment { id body user { email } issue { identifier updatedAt } } } }",
            {"input": {"issueId": "ENG-1", "body": "Customer Northwind asks too <!-- syncd:abc -->"}},
        )
    )
    payload = got["commentCreate"]
    assert payload["success"] is True and payload["lastSyncId"] > 0
    assert payload["comment"]["user"]["email"] == "syncd-bot@sandbox.example"
    assert payload["comment"]["issue"]["updatedAt"] == "2026-11-21T12:00:31.000Z"
    listed = data(gql('{ issue(id: "ENG-1") { comments { nodes { body } } } }'))
    assert listed["issue"]["comments"]["nodes"][0]["body"].endswith("<!-- syncd:abc -->")
    assert fake.issue(issue["id"])["comments"][0]["userId"] == fake.api_user["id"]


def test_issue_create_and_update_state_assignee_and_team(fake, gql, clock):
    team = fake.teams[next(iter(fake.teams))]
    created = data(
        gql(
            'mutation { issueCreate(input: {teamId: "%s", title: "New", priority: 2}) '
            "{ success issue { id identifier priorityLabel state { type } creator { email } } } }" % team["id"]
        )
    )["issueCreate"]["issue"]
    assert created["identifier"] == "ENG-1" and created["priorityLabel"] == "High"
    done_id = fake.state_id("ENG", "Done")
    updated = data(
        gql(
            "mutation($id: String!, $input: IssueUpdateInput!) { issueUpdate(id: $id, input: $input) "
            "{ issue { state { name } completedAt assignee { email } } } }",
            {"id": created["id"], "input": {"stateId": done_id, "assigneeId": fake.ada["id"]}},
        )
    )
    issue = updated["issueUpdate"]["issue"]
    assert (
        issue["state"]["name"] == "Done"
        and issue["completedAt"]
        and issue["assignee"]["email"] == "ada@product.example"
    )
    app = next(t for t in fake.teams.values() if t["key"] == "APP")
    moved = data(
        gql(
            'mutation($id: String!) { issueUpdate(id: $id, input: {teamId: "%s"}) '
            "{ issue { id identifier state { name team { key } } } } }" % app["id"],
            {"id": "ENG-1"},
        )
    )
    assert moved["issueUpdate"]["issue"]["identifier"] == "APP-1"
    assert moved["issueUpdate"]["issue"]["state"] == {"name": "Done", "team": {"key": "APP"}}


ATTACH = """mutation SyncdAttach($input: AttachmentCreateInput!) {
  attachmentCreate(input: $input) { success attachment { id title subtitle metadata issue { identifier } } } }"""


def test_attachment_create_is_idempotent_per_issue_and_url(fake, gql, clock):
    first, second = make_issues(fake, clock, 2)
    url = "https://sandbox.zendesk.com/agent/tickets/7"
    one = data(gql(ATTACH, {"input": {"issueId": "ENG-1", "url": url, "title": "Ticket #7", "metadata": {"n": 1}}}))
    again = data(
        gql(
            ATTACH,
            {"input": {"issueId": first["id"], "url": url, "title": "Ticket #7 (2 customers)", "subtitle": "Open"}},
        )
    )
    a, b = one["attachmentCreate"]["attachment"], again["attachmentCreate"]["attachment"]
    assert a["id"] == b["id"] and b["title"] == "Ticket #7 (2 customers)" and b["subtitle"] == "Open"
    assert b["metadata"] == {"n": 1}
    other = data(gql(ATTACH, {"input": {"issueId": "ENG-2", "url": url, "title": "Ticket #7"}}))
    assert other["attachmentCreate"]["attachment"]["id"] != a["id"]
    found = data(
        gql("query($url: String!) { attachmentsForURL(url: $url) { nodes { issue { identifier } } } }", {"url": url})
    )
    assert sorted(n["issue"]["identifier"] for n in found["attachmentsForURL"]["nodes"]) == ["ENG-1", "ENG-2"]
    linked = data(
        gql('mutation { attachmentLinkURL(issueId: "ENG-1", url: "%s", title: "T") { attachment { id title } } }' % url)
    )
    assert linked["attachmentLinkURL"]["attachment"] == {"id": a["id"], "title": "T"}
    assert len(fake.issue(first["id"])["attachments"]) == 1


# -- errors, auth, limits, counting ---------------------------------------------------------


def test_errors_come_back_the_linear_way(fake, gql):
    denied = gql("{ viewer { id } }", auth="lin_api_wrong")
    assert denied.status_code == 400
    assert denied.json()["errors"][0]["extensions"]["code"] == "AUTHENTICATION_ERROR"
    missing = gql('{ issue(id: "ENG-999") { id } }')
    error = missing.json()["errors"][0]
    assert missing.json()["data"] is None
    assert error["message"] == "Entity not found: Issue" and error["path"] == ["issue"]
    assert error["extensions"]["userError"] is True
    invalid = gql("{ issues { nodes { notAField } } }")
    assert invalid.status_code == 400
    assert invalid.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    bad_cursor = gql('{ issues(after: "nope") { nodes { id } } }')
    assert "Invalid cursor" in bad_cursor.json()["errors"][0]["message"]
    bearer = gql("{ viewer { email } }", auth=f"Bearer {SANDBOX_OAUTH_TOKEN}")
    assert data(bearer)["viewer"]["email"] == "syncd-bot@sandbox.example"


def test_rate_limit_headers_and_a_budget_answering_ratelimited(fake, gql, clock):
    first = gql("{ viewer { id } }")
    assert first.headers["X-RateLimit-Requests-Limit"] == "5000"
    assert first.headers["X-RateLimit-Requests-Remaining"] == "4999"
    reset_ms = int(first.headers["X-RateLimit-Requests-Reset"])
    assert reset_ms == int((clock.now + timedelta(hours=1)).timestamp() * 1000)
    small = int(first.headers["X-Complexity"])
    big = int(gql("{ issues(first: 100) { nodes { id comments { nodes { id } } } } }").headers["X-Complexity"])
    assert big > small
    fake.requests_per_hour = 3
    assert gql("{ viewer { id } }").status_code == 200
    limited = gql("{ viewer { id } }")
    assert limited.status_code == 400
    assert limited.json()["errors"][0]["extensions"]["code"] == "RATELIMITED"
    assert limited.headers["X-RateLimit-Requests-Remaining"] == "0" and int(limited.headers["Retry-After"]) > 0
    clock.advance(3601)
    assert gql("{ viewer { id } }").status_code == 200


def test_requests_are_counted_per_operation(fake, gql):
    gql("query SyncdViewer { viewer { id } }")
    gql("query SyncdViewer { viewer { id } }")
    gql("{ teams { nodes { id } } }")
    gql("query A { viewer { id } } query B { teams { nodes { id } } }", operation="B")
    assert fake.counts == {"POST /graphql SyncdViewer": 2, "POST /graphql teams": 1, "POST /graphql B": 1}


# -- the schema subset stays honest ------------------------------------------------------------


def test_every_type_field_and_argument_exists_in_linears_official_schema(specs_dir):
    official = build_schema((specs_dir / "linear" / "schema.graphql").read_text())
    ours = load_schema()
    problems = []
    for name, ours_type in ours.type_map.items():
        if name.startswith("__"):
            continue
        theirs = official.type_map.get(name)
        if theirs is None or type(theirs) is not type(ours_type):
            problems.append(f"type {name} is not a {type(ours_type).__name__} in Linear's schema")
            continue
        if isinstance(ours_type, (GraphQLObjectType, GraphQLInterfaceType)):
            official_ifaces = {i.name for i in theirs.interfaces}
            problems += [f"{name} implements {i.name}" for i in ours_type.interfaces if i.name not in official_ifaces]
        if isinstance(ours_type, (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)):
            for field_name, field in ours_type.fields.items():
                official_field = theirs.fields.get(field_name)
                if official_field is None:
                    problems.append(f"{name}.{field_name} does not exist")
                    continue
                if str(official_field.type) != str(field.type):
                    problems.append(f"{name}.{field_name}: {field.type} here, {official_field.type} in Linear")
                for arg_name, arg in getattr(field, "args", {}).items():
                    official_arg = official_field.args.get(arg_name)
                    if official_arg is None or str(official_arg.type) != str(arg.type):
                        problems.append(f"{name}.{field_name}({arg_name}: {arg.type}) differs")
                for arg_name, official_arg in getattr(official_field, "args", {}).items():
                    if isinstance(official_arg.type, GraphQLNonNull) and arg_name not in getattr(field, "args", {}):
                        problems.append(f"{name}.{field_name} leaves out required argument {arg_name}")
            if isinstance(ours_type, GraphQLInputObjectType):
                for field_name, official_field in theirs.fields.items():
                    if isinstance(official_field.type, GraphQLNonNull) and field_name not in ours_type.fields:
                        problems.append(f"{name} leaves out required input field {field_name}")
        if isinstance(ours_type, GraphQLEnumType):
            problems += [f"{name}.{v} is not a value" for v in ours_type.values if v not in theirs.values]
    assert problems == []


# -- seed data and the runner ---------------------------------------------------------------------


def test_seed_is_realistic_and_deterministic():
    at = datetime(2026, 12, 1, 21, 50, tzinfo=timezone.utc)  # the seed's present, not the machine's
    one, two = build_sandbox(clock=lambda: at), build_sandbox(clock=lambda: at)
    zd, lin, result = one["zendesk"], one["linear"], one.seed
    assert result.to_dict() == two.seed.to_dict()
    assert [t["subject"] for t in zd.tickets.values()] == [t["subject"] for t in two["zendesk"].tickets.values()]
    assert len(zd.organizations) == 4 and all(o["organization_fields"]["plan"] for o in zd.organizations.values())
    roles = [u["role"] for u in zd.users.values()]
    assert (roles.count("end-user"), roles.count("agent"), roles.count("admin")) == (8, 3, 1)
    assert len(zd.tickets) == 20
    assert {t["status"] for t in zd.tickets.values()} == {"new", "open", "pending", "hold", "solved", "closed"}
    assert sum("escalated" in t["tags"] for t in zd.tickets.values()) >= 6
    titles = {f["title"]: f["id"] for f in zd.ticket_fields.values()}
    assert titles["Linked issue"] == result.linked_issue_field_id
    assert titles["Linked issue status"] == result.linked_issue_status_field_id
    assert zd.field_value(result.tickets["sso"], result.linked_issue_field_id) == result.identifiers["sso"]
    assert sorted(t["key"] for t in lin.teams.values()) == ["APP", "ENG"]
    assert len(lin.issues) == 10 and len(result.trackers["linear"].people) == 4
    types = {lin.issue(i)["state"]["type"] for i in result.issues.values()}
    assert {"triage", "backlog", "unstarted", "started", "completed", "canceled"} == types
    times = sorted(t["updated_at"] for t in zd.tickets.values())
    assert times[0] < times[-1] <= at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_build_sandbox_can_start_empty():
    sandbox = build_sandbox(seed_data=False)
    assert sandbox.seed is None and sandbox["zendesk"].tickets == {} and sandbox["linear"].issues == {}


class Captured(io.StringIO):
    """Output that signals once the runner says it is serving."""

    def __init__(self):
        super().__init__()
        self.ready = threading.Event()

    def write(self, text: str) -> int:
        if "Serving" in text:
            self.ready.set()
        return super().write(text)


def test_serve_prints_urls_credentials_and_a_config_then_stops():
    out, stop = Captured(), threading.Event()
    ports = {"zendesk": 0, "linear": 0, "github": 0, "jira": 0}
    thread = threading.Thread(target=serve, kwargs={"ports": ports, "out": out, "stop": stop})
    thread.start()
    try:
        assert out.ready.wait(timeout=30)
        text = out.getvalue()
        assert "[connectors.zendesk]" in text and "[connectors.linear]" in text
        assert SANDBOX_API_KEY in text and "SYNCD_CONNECTORS__ZENDESK__TOKEN" in text
        urls = [line.split('"')[1] for line in text.splitlines() if line.startswith("url = ")]
        assert len(urls) == 4 and all(u.startswith("http://127.0.0.1:") for u in urls)
        assert (
            requests.post(
                urls[1] + "/graphql",
                json={"query": "{ viewer { id } }"},
                headers={"Authorization": SANDBOX_API_KEY},
                timeout=5,
            ).status_code
            == 200
        )
    finally:
        stop.set()
        thread.join(timeout=10)
    assert "Sandbox stopped." in out.getvalue()


def test_a_deleted_issue_goes_to_the_trash_then_is_not_found_once_purged(fake, gql, clock):
    from connectors.linear import queries as q

    kept, trashed, purged = make_issues(fake, clock, 3)
    fake.delete_issue(trashed["id"])
    fake.delete_issue(purged["id"], purge=True)
    one = "query SyncdIssue($id: String!) { issue(id: $id) { id trashed archivedAt } }"
    assert data(gql(one, {"id": trashed["id"]}))["issue"]["trashed"] is True
    missing = gql(one, {"id": purged["id"]}).json()
    assert missing["errors"][0]["message"] == "Entity not found: Issue"
    # Lists leave the trash out unless archived issues are asked for (as Linear does).
    listed = data(gql(ISSUES, {"filter": {"id": {"in": [i["id"] for i in (kept, trashed, purged)]}}}))
    assert [n["id"] for n in listed["issues"]["nodes"]] == [kept["id"]]
    presence = data(gql(q.PRESENCE, {"filter": {"id": {"in": [kept["id"], trashed["id"], purged["id"]]}}, "first": 3}))
    assert {n["id"]: n["trashed"] for n in presence["issues"]["nodes"]} == {kept["id"]: None, trashed["id"]: True}
