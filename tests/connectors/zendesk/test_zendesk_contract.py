"""Every request the Zendesk connector makes conforms to Zendesk's own
description (../shared/specs/zendesk/oas.yaml)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from connectors.base import CheckTargets, marker_token
from connectors.zendesk.connector import EVENTS_PATH, EXPORT_PATH, ZendeskConfig, ZendeskConnector
from syncd.records import idempotency_key
from syncd.writes import FollowUpTicket, TicketUpdate
from tests.contract.openapi import assert_calls_conform, contract_fixture

pytestmark = pytest.mark.contract

BASE = "https://acme.zendesk.com"
KEY = idempotency_key("contract", "zendesk")

TAGS_ARRAY = {"type": "array", "items": {"type": "string"}}
UPDATE_INPUT = {"$ref": "#/components/schemas/TicketUpdateInput"}
BULK_TAGS = {"type": "object", "properties": {"additional_tags": TAGS_ARRAY, "remove_tags": TAGS_ARRAY}}

zendesk_contract = contract_fixture(
    "zendesk/oas.yaml",
    # Documented parameters the description leaves out (SOURCES.md "Known gaps").
    allow_query={
        # per_page: "Known gaps"; include: the operation's own text points to
        # the ticket sideloads (users, organizations).
        ("GET", EXPORT_PATH): {"per_page", "include"},
        # Cursor pagination and its sort order, described in the operation's text.
        ("GET", "/api/v2/tickets/{ticket_id}/comments"): {"page[size]", "page[after]", "sort"},
        # Ticket sideloads (Side-loading docs; zenpy's recorded traffic uses them).
        ("GET", "/api/v2/tickets/{ticket_id}"): {"include"},
        # The comment_events sideload, described in the operation's own text ("Sideloading").
        ("GET", EVENTS_PATH): {"include"},
    },
    patches={
        # The description declares HTTP Basic only; Zendesk also takes an
        # OAuth access token as a Bearer header (API_NOTES.md, Zendesk docs).
        "/components/securitySchemes/bearerAuth": {"type": "http", "scheme": "bearer"},
        "/security": [{"basicAuth": []}, {"bearerAuth": []}],
        # start_time is for the first request only; later ones send just the
        # cursor (the docs, and after_url in the recorded export traffic).
        "/paths/~1api~1v2~1incremental~1tickets~1cursor/parameters/0": {
            "name": "start_time",
            "in": "query",
            "required": False,
            "schema": {"type": "integer"},
        },
        # The description reuses the ticket-field *definition* for values; the
        # docs ("Setting custom field values") take [{"id": ..., "value": ...}].
        "/components/schemas/TicketUpdateInput/properties/custom_fields/items": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "integer"}, "value": {}},
        },
        # Update Many has no body in the description; its summary says it "accepts an
        # array of up to 100 ticket objects, or a comma-separated list of up to 100
        # ticket ids": the docs send {"ticket": {...}} with ids in the query, or
        # {"tickets": [{"id": ..., ...}, ...]}, and additional_tags / remove_tags
        # ("Adding tags to tickets without overwriting existing tags").
        "/paths/~1api~1v2~1tickets~1update_many/put/requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "anyOf": [
                            {
                                "required": ["ticket"],
                                "properties": {"ticket": {"allOf": [UPDATE_INPUT, BULK_TAGS]}},
                            },
                            {
                                "required": ["tickets"],
                                "properties": {
                                    "tickets": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": 100,
                                        "items": {
                                            "allOf": [
                                                UPDATE_INPUT,
                                                BULK_TAGS,
                                                {
                                                    "type": "object",
                                                    "required": ["id"],
                                                    "properties": {"id": {"type": "integer"}},
                                                },
                                            ]
                                        },
                                    }
                                },
                            },
                        ],
                    }
                }
            },
        },
    },
)


def connector(**auth) -> ZendeskConnector:
    config = ZendeskConfig(kind="zendesk", url=BASE, **(auth or {"email": "ops@acme.test", "token": "t0ken"}))
    return ZendeskConnector("zd", config, sleep=lambda _s: None)


def ticket(tid: int, status: str = "open", tags=()) -> dict:
    return {
        "id": tid,
        "subject": "s",
        "status": status,
        "tags": list(tags),
        "custom_fields": [],
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-02T00:00:00Z",
        "requester_id": 1,
        "organization_id": 2,
    }


def comments_page(ids, after=None) -> dict:
    return {
        "comments": [
            {"id": i, "body": "b", "public": False, "author_id": 1, "created_at": "2024-01-01T00:00:00Z"} for i in ids
        ],
        "meta": {"has_more": after is not None, "after_cursor": after},
    }


@responses.activate
def test_check_and_poll_conform(zendesk_contract):
    responses.get(BASE + "/api/v2/users/me", json={"user": {"id": 1, "name": "A", "email": "a@x", "role": "admin"}})
    responses.get(
        BASE + EXPORT_PATH,
        json={
            "tickets": [ticket(1)],
            "after_cursor": "C1",
            "end_of_stream": False,
            "users": [{"id": 1, "name": "U"}],
            "organizations": [],
        },
    )
    responses.get(BASE + EXPORT_PATH, json={"tickets": [ticket(2)], "after_cursor": "C2", "end_of_stream": True})
    zd = connector()
    zd.check()
    assert len(list(zd.poll(None))) == 2
    list(zd.poll(json.dumps({"cursor": "C2"})))
    seen = assert_calls_conform(responses.calls, zendesk_contract)
    assert seen == ["GET /api/v2/users/me"] + [f"GET {EXPORT_PATH}"] * 3


@responses.activate
def test_reads_conform(zendesk_contract):
    responses.get(BASE + "/api/v2/tickets/5", json={"ticket": ticket(5)})
    responses.get(BASE + "/api/v2/tickets/5/comments", json=comments_page([1, 2], after="P2"))
    responses.get(BASE + "/api/v2/tickets/5/comments", json=comments_page([3]))
    zd = connector()
    zd.get_ticket("5")
    zd.comments("5")
    zd.comments("5", after="1")
    zd.find_marker("5", KEY)
    seen = assert_calls_conform(responses.calls, zendesk_contract)
    assert set(seen) == {"GET /api/v2/tickets/{ticket_id}", "GET /api/v2/tickets/{ticket_id}/comments"}


@responses.activate
def test_single_updates_conform(zendesk_contract):
    responses.get(BASE + "/api/v2/tickets/5", json={"ticket": ticket(5, "pending", ["a"])})
    responses.put(BASE + "/api/v2/tickets/5", json={"ticket": ticket(5)})
    zd = connector()
    zd.update_ticket("5", TicketUpdate(note="n", fields={"360001": "Done"}, status="solved"), KEY)
    zd.update_ticket(
        "5", TicketUpdate(note="n", status="open", status_from=("pending",), add_tags=("b",), remove_tags=("a",)), KEY
    )
    seen = assert_calls_conform(responses.calls, zendesk_contract)
    assert seen == [
        "PUT /api/v2/tickets/{ticket_id}",
        "GET /api/v2/tickets/{ticket_id}",
        "PUT /api/v2/tickets/{ticket_id}",
    ]


@responses.activate
def test_bulk_update_and_job_statuses_conform(zendesk_contract):
    responses.put(BASE + "/api/v2/tickets/update_many", json={"job_status": {"id": "J1", "status": "queued"}})
    responses.get(
        BASE + "/api/v2/job_statuses/show_many",
        json={
            "job_statuses": [
                {
                    "id": "J1",
                    "status": "completed",
                    "results": [{"id": 1, "action": "update", "status": "Updated", "success": True}],
                }
            ]
        },
    )
    update = TicketUpdate(note="shipped", add_tags=("x",), remove_tags=("y",), fields={"1": "v"}, status="open")
    connector().update_tickets(["1"], update, KEY)
    seen = assert_calls_conform(responses.calls, zendesk_contract)
    assert seen == ["PUT /api/v2/tickets/update_many", "GET /api/v2/job_statuses/show_many"]


@responses.activate
def test_followup_create_and_lookup_conform(zendesk_contract):
    closed = {**ticket(5, "closed"), "requester_id": 7}
    created = {
        **ticket(9, "new"),
        "external_id": marker_token(KEY),
        "via": {"channel": "api", "source": {"from": {"ticket_id": 5, "subject": "s"}, "to": {}, "rel": "follow_up"}},
    }
    responses.get(BASE + "/api/v2/tickets/5", json={"ticket": closed})
    responses.post(
        BASE + "/api/v2/tickets",
        status=201,
        json={"ticket": created},
        headers={"Location": BASE + "/api/v2/tickets/9.json"},
    )
    responses.get(BASE + "/api/v2/tickets", json={"tickets": [created], "next_page": None, "count": 1})
    zd = connector()
    zd.create_follow_up("5", FollowUpTicket("Follow-up", "Tell them", assignee_id="3", tags=("a",)), KEY)
    zd.create_follow_up("5", FollowUpTicket("Follow-up", "Tell them", requester_id="7"), KEY)
    assert zd.find_follow_up("5", KEY) == "9"
    seen = assert_calls_conform(responses.calls, zendesk_contract)
    assert seen == [
        "GET /api/v2/tickets/{ticket_id}",
        "POST /api/v2/tickets",
        "POST /api/v2/tickets",
        "GET /api/v2/tickets",
    ]


@responses.activate
def test_oauth_requests_conform(zendesk_contract):
    responses.get(BASE + "/api/v2/tickets/5", json={"ticket": ticket(5)})
    connector(oauth_token="oauth-value").get_ticket("5")
    assert responses.calls[0].request.headers["Authorization"] == "Bearer oauth-value"
    assert_calls_conform(responses.calls, zendesk_contract)


# -- the validator itself must refuse bad requests --------------------------------


def _prepared(method: str, url: str, *, auth=True, **kwargs) -> requests.PreparedRequest:
    session = requests.Session()
    if auth:
        session.auth = ("ops@acme.test/token", "t0ken")
    return session.prepare_request(requests.Request(method, url, **kwargs))


@pytest.mark.parametrize(
    "request_args, message",
    [
        (("PUT", BASE + "/api/v2/tickets/5", {"json": {"ticket": "not an object"}}), "not of type 'object'"),
        (("PUT", BASE + "/api/v2/tickets/5", {"json": {"ticket": {"status": "reopened"}}}), "is not one of"),
        (("GET", BASE + "/api/v2/no/such/thing", {}), "no such path"),
        (("GET", BASE + "/api/v2/tickets/5.json", {}), "ticket_id"),
        (("GET", BASE + "/api/v2/tickets/5?bogus=1", {}), "bogus"),
        (("PATCH", BASE + "/api/v2/tickets/5", {}), "no PATCH operation"),
        # A follow-up must say which closed ticket it follows, as an integer, and carry a comment.
        (
            (
                "POST",
                BASE + "/api/v2/tickets",
                {"json": {"ticket": {"via_followup_source_id": "5", "comment": {"body": "b"}}}},
            ),
            "not of type 'integer'",
        ),
        (("POST", BASE + "/api/v2/tickets", {"json": {"ticket": {"via_followup_source_id": 5}}}), "comment"),
        (("GET", BASE + "/api/v2/tickets?external_ids=x", {}), "external_ids"),
    ],
)
def test_validator_rejects_bad_requests(zendesk_contract, request_args, message):
    method, url, kwargs = request_args
    with pytest.raises(AssertionError, match=message):
        zendesk_contract.validate(_prepared(method, url, **kwargs))


def test_validator_rejects_a_request_without_auth(zendesk_contract):
    with pytest.raises(AssertionError, match="[Ss]ecurity"):
        zendesk_contract.validate(_prepared("GET", BASE + "/api/v2/tickets/5", auth=False))
    token = _prepared("GET", BASE + "/api/v2/tickets/5", auth=False, headers={"Authorization": "Token abc"})
    with pytest.raises(AssertionError, match="[Ss]ecurity"):
        zendesk_contract.validate(token)


def test_validator_matches_on_path_alone_and_honours_forbidden_paths(zendesk_contract):
    from tests.conftest import SPECS
    from tests.contract.openapi import load_contract

    # Any host, and a base path prefix in front of the spec's paths.
    assert (
        zendesk_contract.validate(_prepared("GET", "http://127.0.0.1:8123/zd/api/v2/tickets/5"))
        == "GET /api/v2/tickets/{ticket_id}"
    )
    strict = load_contract(SPECS / "zendesk/oas.yaml", forbid_paths={"/api/v2/search"})
    with pytest.raises(AssertionError, match="must not use"):
        strict.validate(_prepared("GET", BASE + "/api/v2/search?query=x"))


def test_check_objects_request_and_the_fakes_answer_conform(zendesk_contract):
    """syncd check reads List Ticket Fields once; the sandbox answers in Zendesk's described shape."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    from connectors.zendesk.fake import SANDBOX_EMAIL, SANDBOX_TOKEN, ZendeskFake
    from syncd.sandbox.server import Sandbox

    fake = ZendeskFake()
    linked = fake.add_ticket_field("Linked issue", "text")
    severity = fake.add_ticket_field("Severity", "tagger", options=[("Sev 1", "sev1")])
    with Sandbox([fake]):
        zd = ZendeskConnector(
            "zd",
            ZendeskConfig(
                kind="zendesk",
                url=fake.base_url,
                email=SANDBOX_EMAIL,
                token=SANDBOX_TOKEN,
                link_field_id=linked["id"],
                status_field_id=severity["id"],
            ),
            sleep=lambda _s: None,
        )
        calls: list[requests.PreparedRequest] = []
        zd.http.session.hooks["response"].append(lambda r, *args, **kwargs: calls.append(r.request))
        found = zd.check_objects(CheckTargets())
        answer = requests.get(
            fake.base_url + "/api/v2/ticket_fields", auth=(f"{SANDBOX_EMAIL}/token", SANDBOX_TOKEN), timeout=5
        )
    assert [f.where for f in found] == ["connectors.zd.status_field_id"]  # a tagger field holds no free text
    assert assert_calls_conform(calls, zendesk_contract) == ["GET /api/v2/ticket_fields"]
    request = answer.request.copy()
    request.url = "http://contract.invalid/api/v2/ticket_fields"
    zendesk_contract.openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(answer))


@responses.activate
def test_an_agents_name_is_read_once_and_the_request_conforms(zendesk_contract):
    """The conversation mirror names the agent whose note crosses: Show User, once per agent."""
    responses.get(f"{BASE}/api/v2/users/7", json={"user": {"id": 7, "name": "Priya Raman", "role": "agent"}})
    zd = connector()
    assert zd.agent_name("7") == "Priya Raman"
    assert zd.agent_name("7") == "Priya Raman"
    assert assert_calls_conform(responses.calls, zendesk_contract) == ["GET /api/v2/users/{user_id}"]


def test_page_comments_request_and_the_fakes_events_answer_conform(zendesk_contract):
    """The ticket events export, as the connector asks for it and as the sandbox answers it."""
    from datetime import timedelta

    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    from connectors.base import CommentAsk
    from connectors.zendesk.fake import SANDBOX_EMAIL, SANDBOX_TOKEN, ZendeskFake
    from syncd.sandbox.server import Sandbox

    fake = ZendeskFake()
    person = fake.add_user("Ann", "ann@example.com")
    first = fake.create_ticket("Broken", "It fails", requester_id=person["id"])
    second = fake.create_ticket("Slow", "It is slow", requester_id=person["id"])
    fake.add_comment(first["id"], "see ENG-7", public=False, author_id=fake.api_user["id"])
    with Sandbox([fake]):
        zd = ZendeskConnector(
            "zd",
            ZendeskConfig(kind="zendesk", url=fake.base_url, email=SANDBOX_EMAIL, token=SANDBOX_TOKEN),
            sleep=lambda _s: None,
        )
        calls: list[requests.PreparedRequest] = []
        zd.http.session.hooks["response"].append(lambda r, *args, **kwargs: calls.append(r.request))
        asks = []
        for raw in (first, second):
            ticket = zd.get_ticket(str(raw["id"]))
            asks.append(CommentAsk(ticket.ref.id, None, ticket.created_at, ticket.updated_at + timedelta(seconds=1)))
        found = zd.page_comments(asks)
        answer = requests.get(
            fake.base_url + EVENTS_PATH,
            params={"start_time": 0, "include": "comment_events"},
            auth=(f"{SANDBOX_EMAIL}/token", SANDBOX_TOKEN),
            timeout=5,
        )
    assert [c.body for c in found[str(first["id"])]] == ["It fails", "see ENG-7"]  # type: ignore[union-attr]
    assert [c.body for c in found[str(second["id"])]] == ["It is slow"]  # type: ignore[union-attr]
    seen = assert_calls_conform(calls, zendesk_contract)
    assert seen.count(f"GET {EVENTS_PATH}") == 1
    assert answer.json()["ticket_events"][0]["child_events"]
    request = answer.request.copy()
    request.url = "http://contract.invalid" + EVENTS_PATH + "?start_time=0"
    zendesk_contract.openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(answer))


def test_update_each_and_show_many_conform_and_the_fakes_answers_too(zendesk_contract):
    """Update Many with a body per ticket and Show Many Job Statuses, against the sandbox."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    from connectors.base import TicketWrite, WriteResult
    from connectors.zendesk.connector import JOBS_PATH
    from connectors.zendesk.fake import SANDBOX_EMAIL, SANDBOX_TOKEN, ZendeskFake
    from syncd.sandbox.server import Sandbox

    fake = ZendeskFake(job_polls=1)
    person = fake.add_user("Ann", "ann@example.com")
    field = fake.add_ticket_field("Linked issue status", "text")
    ids = [fake.create_ticket(f"T{i}", "It fails", requester_id=person["id"])["id"] for i in range(3)]
    answers: list[requests.Response] = []
    with Sandbox([fake]):
        zd = ZendeskConnector(
            "zd",
            ZendeskConfig(kind="zendesk", url=fake.base_url, email=SANDBOX_EMAIL, token=SANDBOX_TOKEN),
            sleep=lambda _s: None,
        )
        calls: list[requests.PreparedRequest] = []

        def keep(r: requests.Response, *args, **kwargs) -> None:
            calls.append(r.request)
            answers.append(r)

        zd.http.session.hooks["response"].append(keep)
        writes = [
            TicketWrite(
                str(tid),
                TicketUpdate(note=f"note {n}", add_tags=("x",), remove_tags=("y",), fields={str(field["id"]): f"v{n}"}),
                idempotency_key("each", str(n)),
            )
            for n, tid in enumerate(ids)
        ]
        results = zd.update_each(writes)
    assert all(isinstance(r, WriteResult) for r in results.values())
    for n, tid in enumerate(ids):
        assert fake.ticket_comments(tid)[-1]["body"].startswith(f"note {n}")
        assert fake.field_value(tid, field["id"]) == f"v{n}"
    seen = assert_calls_conform(calls, zendesk_contract)
    assert seen == ["PUT /api/v2/tickets/update_many", f"GET {JOBS_PATH}", f"GET {JOBS_PATH}"]
    for answer in answers:
        request = answer.request.copy()
        request.url = "http://contract.invalid" + (urlsplit(answer.request.url).path.split("/zendesk", 1)[-1])
        if answer.request.method == "GET":
            request.url += "?ids=" + parse_qs(urlsplit(answer.request.url).query)["ids"][0]
        zendesk_contract.openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(answer))
