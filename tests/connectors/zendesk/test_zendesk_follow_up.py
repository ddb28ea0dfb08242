"""Zendesk follow-up tickets for closed tickets (create_follow_up / find_follow_up),
with HTTP mocked by ``responses`` and the recorded Create Ticket answer from
../shared/fixtures."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from connectors.base import marker_token
from syncd.errors import AuthError, Conflict, NotFound, PayloadError, TransientError
from syncd.records import idempotency_key
from syncd.writes import FollowUpTicket
from tests.connectors.zendesk.test_zendesk import BASE, body_of, make, path, query

KEY = idempotency_key("link", "follow-up")
CREATED = "TestTicketCreateUpdateDelete.test_single_object_creation-create-single"
NOT_FOUND = "legacy-2017__TestTicketApiExceptions.test_throws_record_not_found"
TICKETS = BASE + "/api/v2/tickets"


def created_answer(source: int | None = 4632) -> dict:
    """The recorded 201 of Create Ticket (ticket 4014), shown as a follow-up of ``source``."""
    body = body_of(CREATED, 0)
    if source is not None:
        body["ticket"]["via"]["source"] = {
            "from": {"ticket_id": source, "subject": "Printer"},
            "to": {},
            "rel": "follow_up",
        }
    return body


def sent(call) -> dict:
    return json.loads(call.request.body)["ticket"]


def closed_source(requester: int = 1500, status: str = "closed") -> dict:
    return {
        "ticket": {
            "id": 4632,
            "status": status,
            "requester_id": requester,
            "subject": "Printer",
            "tags": ["vip"],
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-05T00:00:00Z",
        }
    }


def listed(*tickets: dict) -> dict:
    return {"tickets": list(tickets), "next_page": None, "previous_page": None, "count": len(tickets)}


def ticket_with(tid: int, external_id: str | None, source: int | None) -> dict:
    via = {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}
    if source is not None:
        via["source"] = {"from": {"ticket_id": source, "subject": "s"}, "to": {}, "rel": "follow_up"}
    return {"id": tid, "external_id": external_id, "via": via, "status": "new"}


# -- create_follow_up --------------------------------------------------------------


@responses.activate
def test_create_is_one_post_with_the_source_private_note_and_external_id_marker():
    responses.post(TICKETS, status=201, json=created_answer(), headers={"Location": BASE + "/api/v2/tickets/4014.json"})
    followup = FollowUpTicket(
        subject="Your export fix shipped",
        note="Tell Hannah ENG-12 is live.",
        requester_id="1500",
        assignee_id="77",
        tags=("syncd_followup", "vip", "vip"),
    )
    result = make().create_follow_up("4632", followup, KEY)
    assert [(c.request.method, path(c)) for c in responses.calls] == [("POST", "/api/v2/tickets")]
    ticket = sent(responses.calls[0])
    assert ticket == {
        "via_followup_source_id": 4632,
        "subject": "Your export fix shipped",
        "requester_id": 1500,
        "assignee_id": 77,
        "tags": ["syncd_followup", "vip"],
        "comment": {"body": f"Tell Hannah ENG-12 is live.\n\n[{marker_token(KEY)}]", "public": False},
        "external_id": marker_token(KEY),
    }
    assert result.id == "4014"
    assert result.updated_at.isoformat() == "2023-09-18T23:25:58+00:00"


@responses.activate
def test_without_tags_the_request_leaves_zendesks_inherited_tags_alone():
    responses.post(TICKETS, status=201, json=created_answer())
    make().create_follow_up("4632", FollowUpTicket("s", "n", requester_id="1500"), KEY)
    assert "tags" not in sent(responses.calls[0]) and "assignee_id" not in sent(responses.calls[0])


@responses.activate
def test_without_a_requester_the_source_is_read_once_for_it():
    responses.get(TICKETS + "/4632", json=closed_source(requester=1500))
    responses.post(TICKETS, status=201, json=created_answer())
    result = make().create_follow_up("4632", FollowUpTicket("s", "n"), KEY)
    assert [(c.request.method, path(c)) for c in responses.calls] == [
        ("GET", "/api/v2/tickets/4632"),
        ("POST", "/api/v2/tickets"),
    ]
    assert sent(responses.calls[1])["requester_id"] == 1500
    assert result.id == "4014"


@responses.activate
def test_a_source_that_is_not_closed_is_refused_without_a_post():
    responses.get(TICKETS + "/4632", json=closed_source(status="solved"))
    with pytest.raises(Conflict, match="ticket 4632 is 'solved', not closed") as info:
        make().create_follow_up("4632", FollowUpTicket("s", "n"), KEY)
    assert "\n" not in str(info.value)
    assert len(responses.calls) == 1


@responses.activate
def test_a_source_without_requester_is_a_payload_error_naming_it():
    responses.get(TICKETS + "/4632", json=closed_source(requester=None))
    with pytest.raises(PayloadError, match="ticket 4632 has no requester_id") as info:
        make().create_follow_up("4632", FollowUpTicket("s", "n"), KEY)
    assert info.value.record_id == "4632"
    assert len(responses.calls) == 1


@responses.activate
def test_a_missing_source_is_not_found_naming_it():
    responses.get(TICKETS + "/4632", status=404, json=body_of(NOT_FOUND, 0))
    with pytest.raises(NotFound, match="RecordNotFound"):
        make().create_follow_up("4632", FollowUpTicket("s", "n"), KEY)
    assert len(responses.calls) == 1


@responses.activate
def test_a_refused_create_is_a_one_line_conflict_naming_the_source():
    responses.post(
        TICKETS,
        status=422,
        json={
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {"assignee_id": [{"description": "Assignee is not an agent", "error": "InvalidValue"}]},
        },
    )
    with pytest.raises(Conflict) as info:
        make().create_follow_up("4632", FollowUpTicket("s", "n", requester_id="1500", assignee_id="9"), KEY)
    message = str(info.value)
    assert message.startswith("zd: ticket 4632: Zendesk refused the follow-up ticket (")
    assert "RecordInvalid" in message and "assignee" in message and "\n" not in message
    assert info.value.status == 422


@responses.activate
def test_auth_refusal_keeps_its_kind_and_names_the_source_without_the_secret():
    responses.post(TICKETS, status=403, json={"error": "Forbidden", "description": "You do not have access"})
    with pytest.raises(AuthError, match="ticket 4632: creating its follow-up ticket") as info:
        make().create_follow_up("4632", FollowUpTicket("s", "n", requester_id="1500"), KEY)
    assert "t0ken-value" not in str(info.value)


@responses.activate
def test_a_5xx_is_not_resent_and_says_the_ticket_may_exist():
    responses.post(TICKETS, status=502, json={"error": "bad gateway"})
    with pytest.raises(TransientError, match="ticket 4632") as info:
        make().create_follow_up("4632", FollowUpTicket("s", "n", requester_id="1500"), KEY)
    assert info.value.maybe_applied is True
    assert len(responses.calls) == 1


@responses.activate
def test_a_429_is_waited_out_and_sent_again_since_nothing_was_created():
    responses.post(TICKETS, status=429, headers={"Retry-After": "3"}, json={"error": "APIRateLimitExceeded"})
    responses.post(TICKETS, status=201, json=created_answer())
    sleeps: list[float] = []
    assert make(sleeps).create_follow_up("4632", FollowUpTicket("s", "n", requester_id="1500"), KEY).id == "4014"
    assert sleeps == [3.0] and len(responses.calls) == 2


@responses.activate
def test_an_answer_without_the_ticket_falls_back_on_the_location_header():
    responses.post(TICKETS, status=201, json={}, headers={"Location": BASE + "/api/v2/tickets/5120.json"})
    result = make().create_follow_up("4632", FollowUpTicket("s", "n", requester_id="1500"), KEY)
    assert result.id == "5120" and result.updated_at is None


@responses.activate
def test_an_answer_naming_no_ticket_at_all_sends_delivery_to_the_marker():
    responses.post(TICKETS, status=201, body="")
    with pytest.raises(TransientError, match="found by its marker") as info:
        make().create_follow_up("4632", FollowUpTicket("s", "n", requester_id="1500"), KEY)
    assert info.value.maybe_applied is True


@responses.activate
@pytest.mark.parametrize(
    "followup, what",
    [
        (FollowUpTicket("s", "n", requester_id="hannah@x"), "requester_id 'hannah@x'"),
        (FollowUpTicket("s", "n", assignee_id="priya"), "assignee_id 'priya'"),
    ],
)
def test_user_ids_that_are_not_zendesk_ids_are_refused_before_any_request(followup, what):
    with pytest.raises(Conflict, match=f"ticket 4632: the follow-up's {what} is not a Zendesk user id"):
        make().create_follow_up("4632", followup, KEY)
    assert len(responses.calls) == 0


# -- find_follow_up ----------------------------------------------------------------


@responses.activate
def test_find_lists_tickets_by_the_external_id_marker():
    responses.get(TICKETS, json=listed(ticket_with(4014, marker_token(KEY), 4632)))
    assert make().find_follow_up("4632", KEY) == "4014"
    assert path(responses.calls[0]) == "/api/v2/tickets"
    assert query(responses.calls[0]) == {"external_id": [marker_token(KEY)]}


@responses.activate
def test_find_ignores_other_external_ids_and_other_sources():
    other = idempotency_key("another", "write")
    responses.get(
        TICKETS,
        json=listed(
            ticket_with(4001, marker_token(other), 4632),
            ticket_with(4002, marker_token(KEY), 9999),
            ticket_with(4003, marker_token(KEY).upper(), 4632),
        ),
    )
    assert make().find_follow_up("4632", KEY) is None


@responses.activate
def test_find_accepts_a_match_whose_answer_does_not_show_the_source_and_prefers_the_oldest():
    responses.get(
        TICKETS, json=listed(ticket_with(4020, marker_token(KEY), None), ticket_with(4014, marker_token(KEY), 4632))
    )
    assert make().find_follow_up("4632", KEY) == "4014"


@responses.activate
def test_find_reads_an_echoed_via_followup_source_id_too():
    echoed = {"id": 4014, "external_id": marker_token(KEY), "via_followup_source_id": 9999}
    responses.get(TICKETS, json=listed(echoed))
    assert make().find_follow_up("4632", KEY) is None
    assert make().find_follow_up("9999", KEY) == "4014"


@responses.activate
def test_find_with_nothing_listed_is_none_and_a_wrong_shape_is_a_payload_error():
    responses.get(TICKETS, json=listed())
    assert make().find_follow_up("4632", KEY) is None
    responses.replace(responses.GET, TICKETS, json={"ticket": {}})
    with pytest.raises(PayloadError, match="ticket 4632"):
        make().find_follow_up("4632", KEY)


# -- the answer is lost -------------------------------------------------------------


@responses.activate
def test_lost_answer_then_find_follow_up_finds_it_and_nothing_is_created_twice():
    """Delivery's way after a crash or a lost answer: look before sending again."""
    created: list[dict] = []

    def accept_then_drop(request):
        created.append({**ticket_with(4014, json.loads(request.body)["ticket"]["external_id"], 4632)})
        raise requests.exceptions.ReadTimeout("the answer never came")

    responses.add_callback(responses.POST, TICKETS, callback=accept_then_drop)
    responses.add_callback(responses.GET, TICKETS, callback=lambda _r: (200, {}, json.dumps(listed(*created))))
    zd = make()
    with pytest.raises(TransientError) as info:
        zd.create_follow_up("4632", FollowUpTicket("s", "n", requester_id="1500"), KEY)
    assert info.value.maybe_applied is True
    assert zd.find_follow_up("4632", KEY) == "4014"
    assert [c.request.method for c in responses.calls] == ["POST", "GET"]
    assert len(created) == 1
