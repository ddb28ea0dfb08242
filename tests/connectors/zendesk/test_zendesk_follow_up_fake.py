"""Follow-up tickets in the Zendesk fake: created over HTTP from a closed
ticket, listed by external_id, seen in the export; and the connector driving
it, including an answer lost after the ticket was made."""

from __future__ import annotations

import pytest
import requests

from connectors.base import marker_token
from connectors.zendesk.connector import ZendeskConfig, ZendeskConnector
from connectors.zendesk.fake import SANDBOX_EMAIL, SANDBOX_TOKEN, ZendeskFake
from syncd.errors import Conflict, TransientError
from syncd.records import idempotency_key
from syncd.sandbox.server import Sandbox
from syncd.writes import FollowUpTicket

KEY = idempotency_key("link", "resolved", "follow-up")


@pytest.fixture
def fake(clock):
    zd = ZendeskFake(clock=clock)
    org = zd.add_organization("Northwind", plan="enterprise")
    zd.customer = zd.add_user("Hannah", "hannah@northwind.example", organization_id=org["id"])
    zd.agent = zd.add_user("Priya", "priya@support.example", role="agent")
    zd.source = zd.create_ticket(
        "Export fails", "The CSV export times out", requester_id=zd.customer["id"], tags=["vip", "export"]
    )["id"]
    with Sandbox([zd]):
        yield zd


@pytest.fixture
def api(fake):
    session = requests.Session()
    session.auth = (f"{SANDBOX_EMAIL}/token", SANDBOX_TOKEN)

    def call(method: str, path: str, **kwargs) -> requests.Response:
        return session.request(method, fake.base_url + path, timeout=5, **kwargs)

    yield call
    session.close()


@pytest.fixture
def connector(fake):
    config = ZendeskConfig(kind="zendesk", url=fake.base_url, email=SANDBOX_EMAIL, token=SANDBOX_TOKEN, max_attempts=2)
    zd = ZendeskConnector("zd", config, sleep=lambda _s: None)
    yield zd
    zd.close()


def followup_body(source: int, **extra) -> dict:
    return {
        "ticket": {
            "via_followup_source_id": source,
            "subject": "Your export is fixed",
            "comment": {"body": "Tell Hannah the fix shipped", "public": False},
            **extra,
        }
    }


def followups_of(fake: ZendeskFake, source: int) -> list[dict]:
    return [
        t
        for t in (fake.ticket(i) for i in list(fake.tickets))
        if t["via"]["source"].get("rel") == "follow_up" and t["via"]["source"]["from"]["ticket_id"] == source
    ]


# -- the fake over HTTP -------------------------------------------------------------


def test_close_ticket_closes_by_rule_and_every_write_is_then_refused_like_zendesk(fake, api, clock):
    clock.advance(10)
    closed = fake.close_ticket(fake.source)
    assert closed["status"] == "closed"
    refusal = {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {"status": [{"description": "Status: closed prevents ticket update", "error": "ClosedTicket"}]},
    }
    r = api("PUT", f"/api/v2/tickets/{fake.source}", json={"ticket": {"comment": {"body": "x", "public": False}}})
    assert (r.status_code, r.json()) == (422, refusal)
    assert api("PUT", f"/api/v2/tickets/{fake.source}/tags", json={"tags": ["x"]}).status_code == 422
    job = api(
        "PUT", "/api/v2/tickets/update_many", params={"ids": str(fake.source)}, json={"ticket": {"status": "open"}}
    ).json()["job_status"]
    result = api("GET", f"/api/v2/job_statuses/{job['id']}").json()["job_status"]
    while result["status"] != "completed":
        result = api("GET", f"/api/v2/job_statuses/{job['id']}").json()["job_status"]
    assert result["results"][0]["success"] is False
    assert "closed prevents ticket update" in result["results"][0]["details"]
    assert fake.ticket(fake.source)["status"] == "closed" and len(fake.ticket_comments(fake.source)) == 1
    assert fake.close_ticket(fake.source)["updated_at"] == closed["updated_at"]  # closing twice changes nothing


def test_a_followup_of_a_closed_ticket_answers_201_in_zendesks_wire_format(fake, api, clock):
    fake.close_ticket(fake.source)
    clock.advance(30)
    r = api(
        "POST",
        "/api/v2/tickets",
        json=followup_body(
            fake.source, requester_id=fake.customer["id"], assignee_id=fake.agent["id"], external_id="syncd:abc"
        ),
    )
    assert r.status_code == 201
    ticket = r.json()["ticket"]
    assert r.headers["Location"].endswith(f"/api/v2/tickets/{ticket['id']}.json")
    assert ticket["via"] == {
        "channel": "api",
        "source": {"from": {"ticket_id": fake.source, "subject": "Export fails"}, "to": {}, "rel": "follow_up"},
    }
    assert "via_followup_source_id" not in ticket  # write-only, as in recorded answers
    assert (ticket["external_id"], ticket["requester_id"], ticket["assignee_id"], ticket["status"]) == (
        "syncd:abc",
        fake.customer["id"],
        fake.agent["id"],
        "open",
    )
    assert ticket["organization_id"] == fake.customer["organization_id"]
    assert ticket["tags"] == ["vip", "export"]  # inherited from the closed ticket
    assert ticket["is_public"] is False and ticket["description"] == "Tell Hannah the fix shipped"
    [note] = fake.ticket_comments(ticket["id"])
    assert note["public"] is False and note["author_id"] == fake.api_user["id"]
    assert fake.ticket(fake.source)["followup_ids"] == [ticket["id"]]


def test_tags_in_the_request_replace_the_inherited_ones(fake, api):
    fake.close_ticket(fake.source)
    r = api("POST", "/api/v2/tickets", json=followup_body(fake.source, tags=["syncd_followup"]))
    assert r.json()["ticket"]["tags"] == ["syncd_followup"]


def test_the_source_id_has_no_effect_unless_that_ticket_is_closed(fake, api):
    fake.set_status(fake.source, "solved")
    r = api("POST", "/api/v2/tickets", json=followup_body(fake.source))
    assert r.status_code == 201
    ticket = r.json()["ticket"]
    assert ticket["via"]["source"] == {"from": {}, "to": {}, "rel": None} and ticket["tags"] == []
    assert fake.ticket(fake.source)["followup_ids"] == []
    unknown = api("POST", "/api/v2/tickets", json=followup_body(987654))
    assert unknown.status_code == 201 and unknown.json()["ticket"]["via"]["source"]["rel"] is None


@pytest.mark.parametrize(
    "extra, field",
    [
        (lambda zd: {"via_followup_source_id": "first"}, "via_followup_source_id"),
        (lambda zd: {"external_id": 12}, "external_id"),
        (lambda zd: {"external_id": "x" * 256}, "external_id"),
        (lambda zd: {"requester_id": 42}, "requester_id"),
        (lambda zd: {"assignee_id": zd.customer["id"]}, "assignee_id"),  # an end user, not an agent
    ],
)
def test_bad_followup_values_are_refused_with_zendesks_422_and_nothing_is_created(fake, api, extra, field):
    fake.close_ticket(fake.source)
    before = len(fake.tickets)
    body = followup_body(fake.source)
    body["ticket"].update(extra(fake))
    r = api("POST", "/api/v2/tickets", json=body)
    assert r.status_code == 422 and field in r.json()["details"]
    assert len(fake.tickets) == before and fake.ticket(fake.source)["followup_ids"] == []


def test_list_tickets_by_external_id_is_exact_and_may_list_several(fake, api):
    fake.close_ticket(fake.source)
    ids = [
        api("POST", "/api/v2/tickets", json=followup_body(fake.source, external_id=e)).json()["ticket"]["id"]
        for e in ("syncd:aa", "syncd:aa", "syncd:aab")
    ]
    r = api("GET", "/api/v2/tickets", params={"external_id": "syncd:aa"})
    assert r.status_code == 200
    body = r.json()
    assert [t["id"] for t in body["tickets"]] == ids[:2] and body["count"] == 2 and body["next_page"] is None
    assert api("GET", "/api/v2/tickets.json", params={"external_id": "SYNCD:AA"}).json()["tickets"] == []
    page = api("GET", "/api/v2/tickets", params={"per_page": 2}).json()
    assert [t["id"] for t in page["tickets"]] == [fake.source, ids[0]] and page["count"] == 4
    assert "page=2" in page["next_page"]
    assert fake.counts["GET /api/v2/tickets"] == 3


def test_a_followup_reaches_the_export_like_any_change(fake, api, clock):
    fake.close_ticket(fake.source)
    first = api("GET", "/api/v2/incremental/tickets/cursor", params={"start_time": 0}).json()
    assert [t["id"] for t in first["tickets"]] == [fake.source]
    clock.advance(60)
    new_id = api("POST", "/api/v2/tickets", json=followup_body(fake.source)).json()["ticket"]["id"]
    after = api("GET", "/api/v2/incremental/tickets/cursor", params={"cursor": first["after_cursor"]}).json()
    assert [t["id"] for t in after["tickets"]] == [new_id]
    assert after["tickets"][0]["via"]["source"]["rel"] == "follow_up"


# -- the connector against the fake -------------------------------------------------


def test_connector_creates_a_followup_with_one_read_and_one_write_and_finds_it(fake, connector):
    fake.close_ticket(fake.source)
    fake.reset_counts()
    result = connector.create_follow_up(
        str(fake.source),
        FollowUpTicket("Your export is fixed", "Tell Hannah ENG-12 shipped", assignee_id=str(fake.agent["id"])),
        KEY,
    )
    assert dict(fake.counts) == {"GET /api/v2/tickets/{id}": 1, "POST /api/v2/tickets": 1}
    new = fake.ticket(int(result.id))
    assert new["requester_id"] == fake.customer["id"] and new["external_id"] == marker_token(KEY)
    [note] = fake.ticket_comments(int(result.id))
    assert note["public"] is False and note["body"].startswith("Tell Hannah ENG-12 shipped")
    assert new["updated_at"] == result.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert connector.find_follow_up(str(fake.source), KEY) == result.id
    assert connector.find_marker(result.id, KEY)  # the note carries the marker as every note does
    assert connector.find_follow_up(str(fake.source), idempotency_key("another")) is None


def test_connector_refuses_a_source_that_is_not_closed_and_creates_nothing(fake, connector):
    with pytest.raises(Conflict, match=f"ticket {fake.source} is 'new', not closed"):
        connector.create_follow_up(str(fake.source), FollowUpTicket("s", "n"), KEY)
    assert len(fake.tickets) == 1 and fake.counts["POST /api/v2/tickets"] == 0


def deliver_followup(
    connector: ZendeskConnector, source: str, followup: FollowUpTicket, key: str, *, after_crash: bool
) -> str:
    """What delivery does with a follow-up action: one left ``sending`` (a
    crash, or an answer that may have been lost) is looked for before it is
    sent again."""
    if after_crash:
        found = connector.find_follow_up(source, key)
        if found is not None:
            return found
    try:
        result = connector.create_follow_up(source, followup, key)
    except TransientError as exc:
        if not exc.maybe_applied:
            raise
        return deliver_followup(connector, source, followup, key, after_crash=True)
    assert result.id is not None
    return result.id


def test_lost_answer_the_followup_is_found_and_not_created_twice(fake, connector):
    fake.close_ticket(fake.source)
    fake.inject("truncate", r"^POST /api/v2/tickets$", count=1)  # the ticket is made, the answer cut short
    followup = FollowUpTicket("Your export is fixed", "Tell Hannah", requester_id=str(fake.customer["id"]))
    with pytest.raises(TransientError) as info:
        connector.create_follow_up(str(fake.source), followup, KEY)
    assert info.value.maybe_applied is True
    [made] = followups_of(fake, fake.source)
    found = deliver_followup(connector, str(fake.source), followup, KEY, after_crash=True)
    assert found == str(made["id"])
    assert followups_of(fake, fake.source) == [made]
    assert fake.counts["POST /api/v2/tickets"] == 1


def test_a_crash_before_the_post_finds_nothing_and_creates_exactly_one(fake, connector):
    fake.close_ticket(fake.source)
    followup = FollowUpTicket("Your export is fixed", "Tell Hannah", requester_id=str(fake.customer["id"]))
    first = deliver_followup(connector, str(fake.source), followup, KEY, after_crash=True)
    again = deliver_followup(connector, str(fake.source), followup, KEY, after_crash=True)
    assert first == again and len(followups_of(fake, fake.source)) == 1
    assert fake.counts["POST /api/v2/tickets"] == 1 and fake.counts["GET /api/v2/tickets"] == 2
