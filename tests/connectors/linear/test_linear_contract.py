"""Every GraphQL document the Linear connector sends is valid against Linear's schema.

A tour drives every connector method through ``FakeLinear`` and keeps what
went over the wire; each document is validated with graphql-core against
``../shared/specs/linear/schema.graphql`` and the variables sent are coerced
against the document's variable definitions (so a misspelt filter field or a
string where an Int belongs fails here, not in production).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import responses
from graphql import GraphQLSchema, OperationDefinitionNode, build_schema, parse, validate
from graphql.execution.values import get_variable_values

from connectors.base import BatchedWrite, CheckTargets, SlotRecord
from connectors.linear import queries as linear_queries
from connectors.linear.connector import LinearConfig, LinearConnector, created_issue_id
from syncd.writes import AttachTicket, IssueComment, IssueDraft, UpsertComment
from tests.conftest import SPECS, require_shared
from tests.connectors.linear.test_linear import KEY, MARK, URL, Clock, FakeLinear, issues_page, node

pytestmark = pytest.mark.contract


@pytest.fixture(scope="session")
def linear_schema() -> GraphQLSchema:
    path = require_shared(SPECS / "linear" / "schema.graphql")
    return build_schema(path.read_text(encoding="utf-8"))


def tour(**config) -> list[dict]:
    """Call every connector method once against FakeLinear; return what was sent."""
    clock = Clock()
    settings = {"kind": "linear", "url": URL, "api_key": KEY, "teams": ["ENG"], **config}
    with responses.RequestsMock() as rsps:
        api = FakeLinear(rsps)
        conn = LinearConnector(
            "lin",
            LinearConfig(**settings),
            sleep=clock.sleep,
            clock=lambda: datetime.fromtimestamp(clock.time(), timezone.utc),
        )
        api.data("SyncdViewer", {"viewer": {"id": "u", "name": "Bot", "email": "bot@acme.com"}})
        conn.check()
        api.data(
            "SyncdTeams",
            {
                "teams": {
                    "nodes": [{"id": "t", "key": "ENG", "name": "Engineering"}],
                    "pageInfo": {"hasNextPage": False, "endCursor": None},
                }
            },
        )
        conn.check_objects(CheckTargets())
        # the conversation mirror's comment feed, read with the issues in one document
        # when a rule asks, and followed alone while it has more pages
        api.data(
            "SyncdFeed",
            {
                **issues_page([node(2, "2025-06-02T00:00:00.000Z", slots={"nodes": []})], end="c1"),
                "comments": {"nodes": [], "pageInfo": {"hasNextPage": True, "endCursor": "k1"}},
            },
        )
        slot = {"id": "c8", "createdAt": "2025-06-01T00:00:00.000Z"}
        api.data("SyncdIssues", issues_page([node(1, "2025-06-01T00:00:00.000Z", slots={"nodes": [slot]})]))
        api.data(
            "SyncdComments",
            {
                "comments": {
                    "nodes": [
                        {
                            "id": "c9",
                            "body": "fixed in 4.2",
                            "url": "https://linear.app/acme/issue/ENG-1#comment-c9",
                            "createdAt": "2025-06-01T00:00:00.000Z",
                            "updatedAt": "2025-06-01T00:00:00.000Z",
                            "issue": {"id": "i", "identifier": "ENG-1", "url": "https://linear.app/acme/issue/ENG-1"},
                            "user": {"id": "u7", "name": "Ada"},
                        }
                    ],
                    "pageInfo": {"hasNextPage": False, "endCursor": None},
                }
            },
        )
        conn.read_comments = True
        conn.kept_slots = ("demand",)  # the handoff's demand comment: the feed reads syncd's own, by slot
        remarks = [r for page in conn.poll(None) for r in page.remarks]
        assert [(r.id, r.issue_key, r.author_name) for r in remarks] == [("c9", "ENG-1", "Ada")]
        conn.read_comments = False
        api.data("SyncdIssue", {"issue": node(1, "2025-06-01T00:00:00.000Z")})
        conn.get_issue("ENG-1")
        # a poll whose window overlaps changes it delivered: those pairs are left out by the filter
        api.data("SyncdIssues", issues_page([]))
        seen = [[node(1, "")["id"], "2025-06-01T00:00:00.000Z"], [node(2, "")["id"], "2025-06-01T00:00:00.000Z"]]
        list(conn.poll(json.dumps({"since": "2025-05-31T23:59:55.000Z", "seen": seen})))
        assert "and" in api.sent[-1]["payload"]["variables"]["filter"]
        api.data("SyncdCommentCreate", {"commentCreate": {"success": True, "comment": {"id": "c"}}})
        conn.add_comment("ENG-1", "hello", MARK)
        api.data("SyncdAttachmentCreate", {"attachmentCreate": {"success": True, "attachment": {"id": "a"}}})
        conn.attach_ticket("ENG-1", "https://acme.zendesk.com/agent/tickets/7", "Ticket #7", "1 customer", MARK)
        api.data("SyncdFindMarker", {"issue": {"id": "i", "comments": {"nodes": []}, "attachments": {"nodes": []}}})
        conn.find_marker("ENG-1", MARK)
        # several writes in one document, and their markers looked for together
        # and slot comments: one the feed saw none of (created), one it saw (edited),
        # one nothing vouches for (looked for in SyncdFindSlots, then edited)
        batch = [
            BatchedWrite("ENG-1", MARK, AttachTicket("https://acme.zendesk.com/agent/tickets/8", "Ticket #8", "")),
            BatchedWrite("ENG-2", MARK, IssueComment("hello")),
            BatchedWrite(node(2, "")["id"], MARK, UpsertComment("demand", "2 tickets"), SlotRecord(False)),
            BatchedWrite(node(1, "")["id"], MARK, UpsertComment("demand", "3 tickets"), SlotRecord(False)),
            BatchedWrite("ENG-3", MARK, UpsertComment("demand", "4 tickets"), SlotRecord(True)),
        ]
        api.data("SyncdFindSlots", {"s0": {"id": "i3", "comments": {"nodes": [{"id": "c7", "createdAt": None}]}}})
        api.data(
            "SyncdWrites",
            {
                "w0": {"success": True, "attachment": {"id": "a2"}},
                "w1": {"success": True, "comment": {"id": "c2"}},
                "w2": {"success": True, "comment": {"id": "c3"}},
                "w3": {"success": True, "comment": {"id": "c8"}},
                "w4": {"success": True, "comment": {"id": "c7"}},
            },
        )
        assert [r.id for r in conn.send_batch(batch)] == ["a2", "c2", "c3", "c8", "c7"]
        writes = api.sent[-1]["payload"]
        assert "w2: commentCreate" in writes["query"] and "w3: commentUpdate" in writes["query"]
        assert (writes["variables"]["c3"], writes["variables"]["c4"]) == ("c8", "c7")
        nothing = {"id": "i", "comments": {"nodes": []}, "attachments": {"nodes": []}}
        api.data("SyncdFindMarkers", {f"m{n}": nothing for n in range(len(batch))})
        conn.landed_batch(batch)
        # the periodic existence check of linked issues
        api.data("SyncdPresence", issues_page([{**node(1, "2025-06-01T00:00:00.000Z"), "trashed": False}]))
        conn.presence(["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"], {})
        # the periodic existence check of mirrored comments
        api.data("SyncdCommentsPresent", {"comments": {"nodes": [{"id": "c9", "archivedAt": None, "issue": None}]}})
        conn.comments_present({"c9": "i", "c10": "i"}, {})
        # escalation: a created issue (team and label lookup, create), the crash check,
        # and a comment kept in place (scan and create, then remembered and edited)
        api.data(
            "SyncdCreateLookup",
            {
                "teams": {"nodes": [{"id": "t", "key": "ENG"}]},
                "issueLabels": {"nodes": [{"id": "l", "name": "bug", "team": None}]},
            },
        )
        api.data(
            "SyncdIssueCreate",
            {
                "issueCreate": {
                    "success": True,
                    "issue": {
                        "id": created_issue_id(MARK),
                        "identifier": "ENG-2",
                        "updatedAt": "2025-06-01T00:00:00.000Z",
                    },
                }
            },
        )
        conn.create_issue("ENG", IssueDraft("Export fails", "Steps...", labels=("bug", "nope"), priority="sev2"), MARK)
        api.data("SyncdFindCreated", {"issue": {"id": created_issue_id(MARK), "updatedAt": None}})
        conn.find_created("ENG", MARK)
        api.data("SyncdFindSlot", {"viewer": {"id": "u"}, "issue": {"id": "i", "comments": {"nodes": []}}})
        api.data("SyncdCommentCreate", {"commentCreate": {"success": True, "comment": {"id": "c"}}})
        conn.upsert_comment("ENG-1", "2 tickets", MARK, "demand")
        api.data("SyncdCommentUpdate", {"commentUpdate": {"success": True, "comment": {"id": "c"}}})
        conn.upsert_comment("ENG-1", "3 tickets", MARK, "demand")
    return api.sent


def declared_operations() -> set[str]:
    """Names of the operations in linear_queries' documents (its upper-case constants, and
    the documents it builds for a batch)."""
    names = set()
    built = [
        linear_queries.batch_writes(["attachment", "comment", "update"]),
        linear_queries.find_markers(2),
        linear_queries.find_slots(2),
    ]
    for name, value in [*vars(linear_queries).items(), *(("BUILT", b) for b in built)]:
        if name.isupper() and isinstance(value, str):
            names.update(d.name.value for d in parse(value).definitions if isinstance(d, OperationDefinitionNode))
    return names


def problems(schema: GraphQLSchema, payload: dict) -> list[str]:
    """What is wrong with one request body against the schema (empty when nothing is)."""
    document = parse(payload["query"])
    errors = [e.message for e in validate(schema, document)]
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    named = [op for op in operations if op.name and op.name.value == payload.get("operationName")]
    if len(operations) != 1 or len(named) != 1:
        return errors + [f"want exactly one operation named {payload.get('operationName')!r}"]
    coerced = get_variable_values(schema, named[0].variable_definitions, payload.get("variables") or {})
    if isinstance(coerced, list):
        errors += [e.message for e in coerced]
    return errors


@pytest.mark.parametrize("teams", [["ENG"], []])
def test_every_document_sent_validates_against_schema(linear_schema, teams):
    sent = tour(teams=teams)
    assert {s["payload"]["operationName"] for s in sent} == declared_operations()
    for s in sent:
        assert problems(linear_schema, s["payload"]) == [], s["payload"]["operationName"]


def test_authorization_header_shapes():
    for s in tour():
        assert s["headers"]["Authorization"] == KEY  # a personal key goes bare, no "Bearer"
        assert s["headers"]["Content-Type"] == "application/json"
    for s in tour(api_key=None, oauth_token="oauth-token-value"):
        assert s["headers"]["Authorization"] == "Bearer oauth-token-value"


def test_a_wrong_document_fails_validation(linear_schema):
    wrong_field = {
        "query": "query SyncdIssues { issues(first: 1) { nodes { id identifer } } }",
        "operationName": "SyncdIssues",
        "variables": {},
    }
    assert any("identifer" in p for p in problems(linear_schema, wrong_field))


def test_wrong_variables_fail_coercion(linear_schema):
    payload = next(s["payload"] for s in tour() if s["payload"]["operationName"] == "SyncdIssues")
    bad = dict(payload, variables={"filter": {"team": {"keys": ["ENG"]}}, "first": "50"})
    found = problems(linear_schema, bad)
    assert any("keys" in p for p in found) and any("Int" in p for p in found)
    assert any("$filter" in p for p in problems(linear_schema, dict(payload, variables={"first": 5})))


def test_unnamed_or_misnamed_operation_is_caught(linear_schema):
    payload = {"query": "{ viewer { id } }", "operationName": "SyncdViewer", "variables": {}}
    assert problems(linear_schema, payload)
