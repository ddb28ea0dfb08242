"""The Linear connector against a mocked GraphQL endpoint (``responses``).

``FakeLinear`` answers each named operation from a queue the test fills, and
records every request; the contract tests reuse it to capture the documents.
"""

from __future__ import annotations

import collections
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import responses

from connectors.base import CheckTargets, RouteTarget, find_markers, marker_token
from connectors.linear.connector import SEEN_MAX, FeedCursor, LinearConfig, LinearConnector, iso
from syncd.errors import ApiError, AuthError, ConfigError, Gone, NotFound, PayloadError, TransientError
from syncd.records import StateCategory, parse_time

URL = "https://linear.test"
KEY = "lin_api_SECRETSECRET"
MARK = "0123456789abcdef0123"
NOW = 1_750_000_000.0


class Clock:
    """Wall clock and sleep in one: sleeping moves the clock, nothing waits."""

    def __init__(self, t: float = NOW):
        self.t = t
        self.slept: list[float] = []

    def time(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


class FakeLinear:
    """Queued replies per operation name; every request is kept in ``sent``."""

    def __init__(self, rsps: responses.RequestsMock, url: str = URL):
        self.replies: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self.sent: list[dict] = []
        rsps.add_callback(responses.POST, f"{url}/graphql", callback=self._handle)

    def reply(self, operation: str, body: dict, status: int = 200, headers: dict | None = None) -> None:
        self.replies[operation].append((status, body, headers or {}))

    def data(self, operation: str, data: dict, **kw) -> None:
        self.reply(operation, {"data": data}, **kw)

    def _handle(self, request):
        payload = json.loads(request.body)
        self.sent.append({"payload": payload, "headers": dict(request.headers)})
        queue = self.replies[payload["operationName"]]
        assert queue, f"the test queued no reply for {payload['operationName']}"
        status, body, headers = queue.popleft()
        return status, headers, json.dumps(body)

    def variables(self, operation: str) -> list[dict]:
        return [s["payload"]["variables"] for s in self.sent if s["payload"]["operationName"] == operation]


def node(n: int, updated: str, *, state: str = "started", team: str = "ENG", **over) -> dict:
    out = {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "identifier": f"{team}-{n}",
        "url": f"https://linear.app/acme/issue/{team}-{n}/issue-{n}",
        "title": f"Issue {n}",
        "updatedAt": updated,
        "state": {"name": state.title(), "type": state},
        "assignee": {"name": "Ada", "displayName": "ada", "email": "ada@example.com"},
        "team": {"key": team},
        "attachments": {"nodes": []},
    }
    out.update(over)
    return out


def issues_page(nodes: list, end: str | None = None) -> dict:
    return {"issues": {"nodes": nodes, "pageInfo": {"hasNextPage": end is not None, "endCursor": end}}}


def make(clock: Clock | None = None, *, kept_slots: tuple[str, ...] = (), **config) -> LinearConnector:
    clock = clock or Clock()
    settings = {"kind": "linear", "url": URL, "api_key": KEY, "teams": ["ENG"], "page_size": 2, **config}
    return LinearConnector(
        "lin",
        LinearConfig(**settings),
        sleep=clock.sleep,
        clock=lambda: datetime.fromtimestamp(clock.time(), timezone.utc),
        kept_slots=kept_slots,
    )


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def api(rsps):
    return FakeLinear(rsps)


# --- feed -----------------------------------------------------------------------


def test_recorded_bugwarrior_response(fixtures_dir, api):
    """The recorded nodes lack what syncd needs (id, state.type): each is rejected by
    name with the missing fields; with those two fields added, the recorded rest normalises."""
    recorded = json.loads((fixtures_dir / "linear" / "bugwarrior_issues_query.json").read_text())
    nodes = recorded["response"]["data"]["issues"]["nodes"]

    # As recorded (no pageInfo: bugwarrior did not ask for it) it is the wrong shape for our query.
    api.reply("SyncdIssues", recorded["response"])
    with pytest.raises(PayloadError, match="pageInfo"):
        list(make().poll(None))

    api.data("SyncdIssues", issues_page(nodes))
    (page,) = list(make(Clock(t=1_753_500_000.0)).poll(None))  # a clock after the recording
    assert page.records == []
    assert [r.record_id for r in page.rejected] == ["DUS-5", "DUS-1"]
    for r in page.rejected:
        assert "id" in r.reason and "state.type" in r.reason
    # the rejected nodes still move the high-water mark: they are not re-read forever
    assert json.loads(page.cursor)["since"] == "2025-07-25T17:03:04.239Z"

    completed = [
        dict(n, id=f"uuid-{i}", state=dict(n["state"], type=t))
        for i, (n, t) in enumerate(zip(nodes, ["completed", "unstarted"]))
    ]
    api.data("SyncdIssues", issues_page(completed))
    (page,) = list(make().poll(None))
    assert page.rejected == []
    done, todo = page.records
    assert (done.key, done.url, done.title) == ("DUS-5", nodes[0]["url"], "DO STUFF")
    assert done.state is StateCategory.COMPLETED and done.state_name == "Done"
    assert done.updated_at == datetime(2025, 7, 25, 17, 3, 4, 239000, tzinfo=timezone.utc)
    assert done.assignee == "djmitche@gmail.com"  # only the email was recorded
    assert done.team is None  # the recording has team.name, not team.key
    assert todo.state is StateCategory.UNSTARTED and todo.ref.id == "uuid-1"


def test_pagination_keeps_high_water_mark_until_last_page(api):
    clock = Clock()
    api.data(
        "SyncdIssues", issues_page([node(3, "2025-06-03T00:00:00.000Z"), node(2, "2025-06-02T00:00:00.000Z")], end="c1")
    )
    api.data("SyncdIssues", issues_page([node(1, "2025-06-01T00:00:00.000Z")]))
    pages = list(make(clock).poll(None))

    assert [len(p.records) for p in pages] == [2, 1] and [p.done for p in pages] == [False, True]
    first, second = api.variables("SyncdIssues")
    since = iso(datetime.fromtimestamp(NOW, timezone.utc) - timedelta(days=30))
    assert first == {
        "filter": {"updatedAt": {"gt": since}, "team": {"key": {"in": ["ENG"]}}},
        "first": 2,
        "after": None,
    }
    assert second["after"] == "c1" and second["filter"] == first["filter"]
    assert json.loads(pages[0].cursor) == {"since": since, "after": "c1", "hwm": "2025-06-03T00:00:00.000Z"}
    # Quiet for longer than the overlap before this poll: the window closes on the hwm.
    assert json.loads(pages[1].cursor) == {"since": "2025-06-03T00:00:00.000Z"}


def test_recent_changes_are_left_out_of_the_overlap_pair_by_pair(api):
    """A change a second before the poll: the next poll starts overlap_seconds before the poll
    time, as before, but leaves out the (id, updatedAt) it delivered, so an idle poll re-reads
    nothing; another issue changed at the same instant is still asked for."""
    clock = Clock()
    just_now = iso(datetime.fromtimestamp(NOW - 1, timezone.utc))
    api.data("SyncdIssues", issues_page([node(1, just_now)]))
    (page,) = list(make(clock).poll(None))
    one = node(1, just_now)["id"]
    assert json.loads(page.cursor) == {
        "since": iso(datetime.fromtimestamp(NOW - 5, timezone.utc)),
        "seen": [[one, just_now]],
    }
    clock.t += 60
    # Linear leaves the pair out; were it answered anyway, it is not delivered twice.
    api.data("SyncdIssues", issues_page([node(2, just_now), node(1, just_now)]))
    (again,) = list(make(clock).poll(page.cursor))
    assert [i.key for i in again.records] == ["ENG-2"]
    flt = api.variables("SyncdIssues")[-1]["filter"]
    assert flt["updatedAt"] == {"gt": iso(datetime.fromtimestamp(NOW - 5, timezone.utc))}
    assert flt["and"] == [{"or": [{"updatedAt": {"neq": just_now}}, {"id": {"nin": [one]}}]}]
    # Quiet for longer than the overlap since: the window closes on the hwm, and nothing is left out.
    assert json.loads(again.cursor) == {"since": just_now}


def test_the_overlap_is_read_whole_past_seen_max(api):
    clock = Clock()
    stamps = [
        iso(datetime.fromtimestamp(NOW - 1, timezone.utc) - timedelta(milliseconds=n)) for n in range(SEEN_MAX + 1)
    ]
    api.data("SyncdIssues", issues_page([node(n + 1, t) for n, t in enumerate(stamps)]))
    (page,) = list(make(clock, page_size=250).poll(None))
    assert "seen" not in json.loads(page.cursor)  # the next poll re-reads the window, as before


def test_resume_after_crash_mid_pagination(api):
    api.data("SyncdIssues", issues_page([node(3, "2025-06-03T00:00:00.000Z")], end="c1"))
    feed = make().poll(json.dumps({"since": "2025-05-20T00:00:00.000Z"}))
    page1 = next(feed)
    del feed  # the process dies before reading page 2

    api.data("SyncdIssues", issues_page([node(1, "2025-06-01T00:00:00.000Z")]))
    (page2,) = list(make().poll(page1.cursor))
    resumed = api.variables("SyncdIssues")[-1]
    assert resumed["after"] == "c1"
    assert resumed["filter"]["updatedAt"] == {"gt": "2025-05-20T00:00:00.000Z"}
    assert [i.key for i in page2.records] == ["ENG-1"]
    # the high-water mark of page 1 survived the crash inside the cursor
    assert json.loads(page2.cursor) == {"since": "2025-06-03T00:00:00.000Z"}


def test_same_id_and_time_is_yielded_once_per_poll(api):
    twice = node(5, "2025-06-05T00:00:00.000Z")
    api.data("SyncdIssues", issues_page([twice, node(4, "2025-06-04T00:00:00.000Z")], end="c1"))
    api.data("SyncdIssues", issues_page([twice]))
    pages = list(make().poll(None))
    assert [i.key for p in pages for i in p.records] == ["ENG-5", "ENG-4"]


def test_idle_poll_costs_one_request_and_keeps_since(api):
    api.data("SyncdIssues", issues_page([]))
    conn = make()
    cursor = FeedCursor(parse_time("2025-02-01T00:00:00Z")).dump()
    (page,) = list(conn.poll(cursor))
    assert page.done and page.records == [] and page.cursor == cursor
    assert conn.http.stats.by_endpoint == {"POST /graphql SyncdIssues": 1}


def teams_page(*keys: str, end: str | None = None) -> dict:
    nodes = [{"id": f"team-{k}", "key": k, "name": k.title()} for k in keys]
    return {"teams": {"nodes": nodes, "pageInfo": {"hasNextPage": end is not None, "endCursor": end}}}


def test_no_team_filter_when_following_every_team(api):
    api.data("SyncdTeams", teams_page("ENG"))
    api.data("SyncdIssues", issues_page([]))
    list(make(teams=[]).poll(None))
    assert "team" not in api.variables("SyncdIssues")[0]["filter"]


def test_unreadable_cursor_names_connector():
    with pytest.raises(ConfigError, match="connector lin: stored cursor"):
        list(make().poll("not json"))


def test_bad_nodes_are_rejected_and_the_rest_kept(api):
    api.data(
        "SyncdIssues",
        issues_page(
            [
                node(1, "2025-06-01T00:00:00.000Z", state="frozen"),
                node(2, "not a time"),
                "junk",
                node(3, "2025-06-01T00:00:00.000Z"),
            ]
        ),
    )
    (page,) = list(make().poll(None))
    assert [i.key for i in page.records] == ["ENG-3"]
    reasons = {r.record_id: r.reason for r in page.rejected}
    assert "state.type (got 'frozen')" in reasons["00000000-0000-4000-8000-000000000001"]
    assert "updatedAt" in reasons["00000000-0000-4000-8000-000000000002"]
    assert "str, not an object" in reasons[None]


def test_the_issue_carries_linears_own_state_words(api):
    api.data("SyncdIssue", {"issue": node(9, "2025-06-01T00:00:00.000Z", state="started")})
    issue = make().get_issue("ENG-9")
    assert issue.native == {"type": "started", "name": "Started"}
    assert LinearConnector.state_rule_model.conditions() == tuple(issue.native)


def test_attachments_and_markers_normalise(api):
    attachments = {
        "nodes": [
            {"url": "https://acme.zendesk.com/agent/tickets/7", "title": "Ticket #7", "metadata": {"syncd": MARK}},
            {"url": "https://example.com/doc", "title": "Spec", "metadata": {}},
        ]
    }
    api.data("SyncdIssue", {"issue": node(9, "2025-06-01T00:00:00.000Z", attachments=attachments, assignee=None)})
    issue = make().get_issue("ENG-9")
    assert [a.marker for a in issue.attachments] == [MARK, None]
    assert issue.assignee is None and issue.team == "ENG" and issue.public is False
    assert issue.ref.id == "00000000-0000-4000-8000-000000000009"


# --- errors and retries ----------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 400])
def test_ratelimited_error_waits_for_reset_then_retries(api, status):
    clock = Clock()
    reset_ms = int((NOW + 42) * 1000)
    api.reply(
        "SyncdIssues",
        {"errors": [{"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED"}}]},
        status=status,
        headers={"X-RateLimit-Requests-Remaining": "0", "X-RateLimit-Requests-Reset": str(reset_ms)},
    )
    api.data(
        "SyncdIssues",
        issues_page([node(1, "2025-06-01T00:00:00.000Z")]),
        headers={"X-RateLimit-Requests-Remaining": "1499"},
    )
    conn = make(clock)
    (page,) = list(conn.poll(None))
    assert len(page.records) == 1
    assert clock.slept == [pytest.approx(42.0)]
    assert conn.http.stats.by_endpoint["POST /graphql SyncdIssues"] == 2


def test_ratelimited_mutation_is_retried_too(api):
    """A rate-limited write was refused, not applied: sending it again is safe."""
    api.reply(
        "SyncdCommentCreate",
        {"errors": [{"message": "slow down", "extensions": {"code": "RATELIMITED"}}]},
        status=400,
        headers={"Retry-After": "3"},
    )
    api.data("SyncdCommentCreate", {"commentCreate": {"success": True, "comment": {"id": "c1", "updatedAt": None}}})
    clock = Clock()
    assert make(clock).add_comment("ENG-1", "hi", MARK).id == "c1"
    assert clock.slept == [3.0]


@pytest.mark.parametrize("status, headers", [(429, {"Retry-After": "7"}), (502, {}), (503, {})])
def test_http_429_and_5xx_are_retried_for_queries(api, status, headers):
    clock = Clock()
    api.reply("SyncdViewer", {"error": "busy"}, status=status, headers=headers)
    api.data("SyncdViewer", {"viewer": {"id": "u1", "name": "Syncd Bot", "email": "bot@acme.com"}})
    assert make(clock).check() == "Syncd Bot <bot@acme.com>"
    assert len(clock.slept) == 1
    if status == 429:
        assert clock.slept == [7.0]


def test_5xx_on_a_mutation_is_not_resent(api):
    api.reply("SyncdCommentCreate", {"error": "oops"}, status=502)
    with pytest.raises(TransientError) as info:
        make().add_comment("ENG-1", "hi", MARK)
    assert info.value.maybe_applied
    assert len(api.sent) == 1


def test_ratelimit_that_never_lifts_gives_up(api):
    for _ in range(5):
        api.reply(
            "SyncdViewer", {"errors": [{"message": "limited", "extensions": {"code": "RATELIMITED"}}]}, status=400
        )
    with pytest.raises(TransientError, match="rate limited"):
        make().check()
    assert len(api.sent) == 5


@pytest.mark.parametrize("status", [200, 400])
def test_authentication_error_in_body_is_auth_error(api, status):
    api.reply(
        "SyncdViewer",
        {
            "errors": [
                {
                    "message": "Authentication required, not authenticated",
                    "extensions": {"code": "AUTHENTICATION_ERROR"},
                }
            ]
        },
        status=status,
    )
    with pytest.raises(AuthError) as info:
        make().check()
    assert KEY not in str(info.value) and "AUTHENTICATION_ERROR" in str(info.value)
    assert len(api.sent) == 1


def test_http_401_is_auth_error(api):
    api.reply("SyncdViewer", {"errors": [{"message": "bad key"}]}, status=401)
    with pytest.raises(AuthError):
        make().check()


def test_other_errors_on_http_200_raise(api):
    api.reply(
        "SyncdIssue",
        {"data": None, "errors": [{"message": "Argument Validation Error", "extensions": {"code": "INVALID_INPUT"}}]},
    )
    with pytest.raises(ApiError, match="SyncdIssue: INVALID_INPUT: Argument Validation Error"):
        make().get_issue("ENG-1")


def test_entity_not_found_for_an_issue_is_gone(api):
    api.reply(
        "SyncdIssue",
        {"data": None, "errors": [{"message": "Entity not found: Issue", "extensions": {"code": "INVALID_INPUT"}}]},
    )
    api.reply(
        "SyncdCommentCreate",
        {"data": None, "errors": [{"message": "Entity not found: Issue", "extensions": {"code": "INVALID_INPUT"}}]},
    )
    with pytest.raises(Gone, match="not visible"):
        make().get_issue("ENG-404")
    with pytest.raises(Gone):
        make().add_comment("ENG-404", "hello", "k" * 20)


def test_entity_not_found_for_something_else_stays_not_found(api):
    api.reply(
        "SyncdSlotComment",
        {"data": None, "errors": [{"message": "Entity not found: Comment", "extensions": {"code": "INVALID_INPUT"}}]},
    )
    with pytest.raises(NotFound) as caught:
        make()._graphql("SyncdSlotComment", "query SyncdSlotComment { x }")
    assert not isinstance(caught.value, Gone)


def test_an_issue_in_the_trash_is_gone(api):
    api.data("SyncdIssue", {"issue": {**node(1, "2026-11-21T12:00:00.000Z"), "trashed": True}})
    with pytest.raises(Gone, match="trash"):
        make().get_issue("ENG-1")


def test_presence_batches_ids_and_tells_found_trashed_and_absent(api):
    when = "2026-11-21T12:00:00.000Z"
    nodes = {n: node(n, when, team="ENG" if n < 50 else "OPS", trashed=n == 3) for n in range(60)}
    ids = [nodes[n]["id"] for n in range(60)]
    api.data(
        "SyncdPresence",
        {"issues": {"nodes": [nodes[n] for n in range(50) if n != 7], "pageInfo": {"hasNextPage": False}}},
    )
    api.data(
        "SyncdPresence", {"issues": {"nodes": [nodes[n] for n in range(50, 60)], "pageInfo": {"hasNextPage": False}}}
    )
    connector = make(teams=["ENG"])
    found = connector.presence(ids, {})
    assert found.requests == 2
    sent = [s["payload"]["variables"] for s in api.sent]
    assert [v["filter"]["id"]["in"] for v in sent] == [ids[:50], ids[50:]]
    assert set(found.gone) == {ids[3], ids[7]}
    assert "trash" in found.gone[ids[3]]
    assert len(found.found) == 58
    assert connector.follows(found.found[ids[1]]) and not connector.follows(found.found[ids[55]])


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"issues": []}},
        {"data": {"issues": {"nodes": {}, "pageInfo": {"hasNextPage": False}}}},
        {"data": {"issues": {"nodes": [], "pageInfo": {"hasNextPage": True, "endCursor": None}}}},
        {"data": None},
        {"something": "else"},
    ],
)
def test_wrong_shape_is_payload_error(api, body):
    api.reply("SyncdIssues", body)
    with pytest.raises(PayloadError):
        list(make().poll(None))


# --- links ------------------------------------------------------------------------------


def refs(conn: LinearConnector, text: str) -> list[str]:
    return [m.group("ref") for p in conn.link_patterns() for m in re.finditer(p, text)]


def test_link_patterns_find_urls_and_configured_identifiers():
    conn = make(teams=["ENG", "APP"], workspace="acme")
    text = (
        "See https://linear.app/acme/issue/ENG-12/crash-on-save and APP-3, "
        "not OPS-4, not https://linear.app/other/issue/ENG-99, not ISO-8601 or 2024-05-01, "
        "not XENG-5 or eng-6."
    )
    assert sorted(set(refs(conn, text))) == ["APP-3", "ENG-12"]


def test_any_workspace_and_no_bare_identifiers_without_teams():
    conn = make(teams=[])
    text = "https://linear.app/other/issue/OPS-4/slug and ENG-12 and ISO-8601"
    assert refs(conn, text) == ["OPS-4"]


def test_following_every_team_recognises_the_keys_of_the_teams_listed_and_seen(api):
    """teams = []: the first poll lists the workspace's teams (every page), and a team
    first seen in the feed afterwards is recognised too; the list is read once."""
    conn = make(teams=[])
    api.data("SyncdTeams", teams_page("ENG", end="t1"))
    api.data("SyncdTeams", teams_page("OPS"))
    api.data("SyncdIssues", issues_page([node(1, "2025-06-01T00:00:00.000Z", team="APP")]))
    list(conn.poll(None))
    api.data("SyncdIssues", issues_page([]))
    list(conn.poll(None))
    assert [v["after"] for v in api.variables("SyncdTeams")] == [None, "t1"]
    assert conn.key_prefixes() is None  # every team: any prefix may be one of its keys
    assert refs(conn, "ENG-12, OPS-3 and APP-1, not XYZ-2") == ["ENG-12", "OPS-3", "APP-1"]


def test_configured_teams_are_the_key_prefixes_and_no_team_list_is_read(api):
    conn = make(teams=["ENG"])
    api.data("SyncdIssues", issues_page([node(1, "2025-06-01T00:00:00.000Z", team="APP")]))
    list(conn.poll(None))
    assert api.variables("SyncdTeams") == [] and conn.key_prefixes() == frozenset({"ENG"})
    assert refs(conn, "APP-1 and ENG-2") == ["ENG-2"]


# --- check: the objects named ----------------------------------------------------------


def route(team: str, name: str = "bugs", creates: bool = False) -> RouteTarget:
    return RouteTarget(f"rules/routes.toml:1: routes.{name}.team", name, team, creates)


def test_check_objects_finds_unknown_and_unfollowed_teams(api):
    api.data("SyncdTeams", teams_page("ENG", "APP", "OPS"))
    conn = make(teams=["ENG", "eng2", "app"])
    found = conn.check_objects(CheckTargets(routes=(route("ENG"), route("OPS", "ops"), route("NOPE", "nope"))))
    assert [(f.level, f.where) for f in found] == [
        ("error", "connectors.lin.teams"),
        ("error", "connectors.lin.teams"),
        ("error", "rules/routes.toml:1: routes.ops.team"),
        ("error", "rules/routes.toml:1: routes.nope.team"),
    ]
    assert "no Linear team with key 'eng2'" in found[0].message and "(teams: APP, ENG, OPS)" in found[0].message
    assert "written 'APP' in Linear" in found[1].message
    assert "team OPS is not followed by connector lin" in found[2].message
    assert "no Linear team with key 'NOPE'" in found[3].message


def test_check_objects_with_every_team_notes_the_keys_it_recognises(api):
    api.data("SyncdTeams", teams_page("ENG", "APP"))
    conn = make(teams=[])
    (note,) = conn.check_objects(CheckTargets(routes=(route("APP"),)))
    assert note.level == "note" and note.where == "connectors.lin.teams"
    assert "bare keys of the 2 team(s) this API key sees (APP, ENG)" in note.message
    assert refs(conn, "see APP-4") == ["APP-4"]


# --- writes --------------------------------------------------------------------------------


def test_add_comment_carries_hidden_marker(api):
    api.data(
        "SyncdCommentCreate",
        {"commentCreate": {"success": True, "comment": {"id": "comment-1", "updatedAt": "2025-06-01T00:00:00.000Z"}}},
    )
    result = make().add_comment("issue-uuid", "Ticket #7 is waiting.", MARK)
    assert result.id == "comment-1" and result.updated_at == parse_time("2025-06-01T00:00:00Z")
    (sent,) = api.variables("SyncdCommentCreate")
    body = sent["input"]["body"]
    assert sent["input"]["issueId"] == "issue-uuid"
    assert body.startswith("Ticket #7 is waiting.")
    assert body.endswith(f"<!-- {marker_token(MARK)} -->") and find_markers(body) == (MARK,)


def test_attach_ticket_puts_key_in_metadata(api):
    api.data("SyncdAttachmentCreate", {"attachmentCreate": {"success": True, "attachment": {"id": "att-1"}}})
    result = make().attach_ticket(
        "issue-uuid", "https://acme.zendesk.com/agent/tickets/7", "Ticket #7", "3 customers", MARK
    )
    assert result.id == "att-1"
    (sent,) = api.variables("SyncdAttachmentCreate")
    assert sent["input"] == {
        "issueId": "issue-uuid",
        "url": "https://acme.zendesk.com/agent/tickets/7",
        "title": "Ticket #7",
        "subtitle": "3 customers",
        "metadata": {"syncd": MARK},
    }


def test_write_without_success_is_api_error(api):
    api.data("SyncdCommentCreate", {"commentCreate": {"success": False, "comment": None}})
    with pytest.raises(ApiError, match="did not report success"):
        make().add_comment("issue-uuid", "x", MARK)


def _marker_issue(comments: list[dict], attachments: list[dict]) -> dict:
    return {"issue": {"id": "issue-uuid", "comments": {"nodes": comments}, "attachments": {"nodes": attachments}}}


def test_find_marker_in_comments_with_one_query(api):
    api.data("SyncdFindMarker", _marker_issue([{"id": "c", "body": f"hi\n<!-- syncd:{MARK} -->"}], []))
    assert make().find_marker("issue-uuid", MARK) is True
    (sent,) = api.variables("SyncdFindMarker")
    assert sent == {"id": "issue-uuid", "comments": {"body": {"contains": marker_token(MARK)}}}


def test_find_marker_in_attachment_metadata(api):
    api.data("SyncdFindMarker", _marker_issue([], [{"url": "u", "metadata": {"syncd": MARK}}]))
    assert make().find_marker("issue-uuid", MARK) is True


def test_find_marker_absent(api):
    other = "f" * 20
    api.data(
        "SyncdFindMarker",
        _marker_issue([{"id": "c", "body": f"<!-- syncd:{other} -->"}], [{"url": "u", "metadata": {"syncd": other}}]),
    )
    assert make().find_marker("issue-uuid", MARK) is False


# --- config ------------------------------------------------------------------------------


def test_config_requires_a_credential():
    with pytest.raises(ValueError, match="SYNCD_CONNECTORS__<NAME>__API_KEY"):
        LinearConfig(kind="linear")


def test_config_rejects_bad_team_key_and_page_size():
    with pytest.raises(ValueError, match="teams"):
        LinearConfig(kind="linear", api_key="k", teams=["EN G"])
    with pytest.raises(ValueError, match="page_size"):
        LinearConfig(kind="linear", api_key="k", page_size=500)


def test_api_key_file_is_read(tmp_path, api):
    path = tmp_path / "linear.key"
    path.write_text("lin_api_FROMFILE\n")
    api.data("SyncdViewer", {"viewer": {"id": "u1", "name": "Bot", "email": None}})
    conn = LinearConnector("lin", LinearConfig(kind="linear", url=URL, api_key_file=str(path)))
    assert conn.check() == "Bot <no email>"
    assert api.sent[0]["headers"]["Authorization"] == "lin_api_FROMFILE"


def test_missing_api_key_file_is_a_one_line_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"connectors\.lin\.api_key_file: cannot read"):
        LinearConnector("lin", LinearConfig(kind="linear", api_key_file=str(tmp_path / "nope")))


@responses.activate
def test_comments_present_an_archived_comment_is_deleted_unless_its_issue_is_archived():
    api = FakeLinear(responses)
    api.data(
        "SyncdCommentsPresent",
        {
            "comments": {
                "nodes": [
                    {"id": "c1", "archivedAt": None, "issue": {"id": "i1", "archivedAt": None}},
                    {"id": "c2", "archivedAt": "2025-06-01T00:00:00.000Z", "issue": {"id": "i1", "archivedAt": None}},
                    {
                        "id": "c3",
                        "archivedAt": "2025-06-01T00:00:00.000Z",
                        "issue": {"id": "i2", "archivedAt": "2025-06-01T00:00:00.000Z"},
                    },
                ]
            }
        },
    )
    answer = make().comments_present({"c1": "i1", "c2": "i1", "c3": "i2", "c4": "i2"}, {})
    assert (answer.present, answer.gone, answer.requests) == ({"c1", "c3"}, {"c2", "c4"}, 1)
    assert api.variables("SyncdCommentsPresent")[0]["filter"] == {"id": {"in": ["c1", "c2", "c3", "c4"]}}


@pytest.mark.parametrize("damaged", [5, [["id-only"]], [[1, "2025-02-01T00:00:00Z"]], [["a", "not a time"]]])
def test_a_damaged_seen_list_in_the_cursor_is_one_line_naming_the_cursor(damaged):
    text = json.dumps({"since": "2025-02-01T00:00:00Z", "seen": damaged})
    with pytest.raises(ConfigError) as caught:
        FeedCursor.load(text, "linear")
    (line,) = caught.value.problems
    assert "connector linear: stored cursor" in line and "reset this connector's cursor" in line
