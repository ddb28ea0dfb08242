"""Every request the Intercom connector sends, and every answer its fake gives, conform to
Intercom's own description (../shared/specs/intercom/api.intercom.io.yaml, version 2.15).

The connector runs against the fake over real HTTP; a response hook on its one
session records each exchange, and each is validated both ways: the request
(path, method, parameters, body, bearer auth) and the fake's answer (status
and body against the operation's response schema)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from connectors.intercom.connector import IntercomConfig, IntercomConnector
from connectors.intercom.fake import IntercomFake
from syncd.errors import AuthError, NotFound
from syncd.sandbox.server import Sandbox
from syncd.writes import FollowUpTicket, TicketUpdate
from tests.contract.openapi import _ORIGIN, Contract, _describe, contract_fixture

pytestmark = pytest.mark.contract

KEY = "0123456789abcdef0123"

intercom_contract = contract_fixture("intercom/api.intercom.io.yaml")


class Recorder:
    """Every response the connector's session receives (each holds its request)."""

    def __init__(self, connector: IntercomConnector):
        self.responses: list[requests.Response] = []
        connector.http.session.hooks["response"].append(self._keep)

    def _keep(self, response: requests.Response, *args, **kwargs) -> None:
        self.responses.append(response)


def conform(recorded: list[requests.Response], contract: Contract) -> list[str]:
    """Validate each request and each answer; return "METHOD /template" per exchange."""
    seen: list[str] = []
    failures: list[str] = []
    assert recorded, "nothing was recorded"
    for response in recorded:
        request = response.request
        try:
            seen.append(contract.validate(request))
        except AssertionError as exc:
            failures.append(str(exc))
            continue
        rewritten = request.copy()
        path = urlsplit(request.url or "").path
        rewritten.url = _ORIGIN + path
        errors = list(
            contract.openapi.iter_response_errors(RequestsOpenAPIRequest(rewritten), RequestsOpenAPIResponse(response))
        )
        problems = [_describe(e) for e in errors]
        if errors and response.status_code >= 400 and all("Unknown response http status" in str(e) for e in errors):
            # Some operations describe no error answers (GET /tickets/{id} has no 404);
            # Intercom's errors all share the description's error schema.
            problems = _error_list_problems(response)
        if problems:
            failures.append(f"answer {response.status_code} to {request.method} {path}: " + "; ".join(problems))
    if failures:
        raise AssertionError("\n".join(failures))
    return seen


def _error_list_problems(response: requests.Response) -> list[str]:
    """An undescribed error answer, checked against components/schemas/error."""
    body = response.json()
    if not isinstance(body, dict) or body.get("type") != "error.list" or not isinstance(body.get("errors"), list):
        return [f"not an error.list: {body!r}"]
    return [f"error without a code: {e!r}" for e in body["errors"] if not isinstance(e, dict) or not e.get("code")]


@pytest.fixture
def world():
    fake = IntercomFake(seed=3)
    type_id = fake.default_type["id"]
    for name in ("Linked issue status", "Follow-up stage", "Linked issue"):
        fake.add_ticket_attribute(type_id, name)
    company = fake.add_company("Northwind Logistics", plan="enterprise")
    contact = fake.add_contact("Hannah Lindqvist", "hannah@northwind.example", company_id=company["id"])
    agent = fake.add_admin("Priya Raman", "priya@example.com")
    with Sandbox([fake]):
        yield fake, contact, agent


def make(fake: IntercomFake, **extra) -> IntercomConnector:
    config = IntercomConfig(
        kind="intercom",
        url=fake.base_url,
        app_url=fake.app_url(),
        max_attempts=1,
        **{**fake.exam_config(), **extra},
    )
    return IntercomConnector("helpdesk", config)


def test_the_handoff_s_requests_and_the_fake_s_answers_conform(world, intercom_contract):
    fake, contact, agent = world
    ticket = fake.create_ticket("SSO loop", "<p>We loop on ENG-12</p>", contact_id=contact["id"])["id"]
    fake.assign(ticket, agent["id"])
    fake.admin_note(ticket, "<p>Looks like ENG-12</p>", admin_id=agent["id"])
    convo = fake.create_conversation("<p>Hello, billing is wrong</p>", contact_id=contact["id"])["id"]
    connector = make(
        fake,
        status_attribute="Linked issue status",
        stage_attribute="Follow-up stage",
        link_attribute="Linked issue",
        conversations=True,
        page_size=1,
    )
    recorder = Recorder(connector)
    connector.check()
    pages = list(connector.poll(None))
    assert {r.ref.id for p in pages for r in p.records} == {ticket, f"c{convo}"}
    for page in pages:
        for record in page.records:
            connector.comments(record.ref.id)
    connector.update_ticket(
        ticket,
        TicketUpdate(
            note="Linked ENG-12 &amp; more",
            fields={"Linked issue status": "ENG-12: In Progress"},
            add_tags=("syncd_linked", "syncd_stage_assigned"),
            status="open",
            status_from=("pending", "solved"),
        ),
        KEY,
    )
    fake.set_state(ticket, "resolved")
    current = connector.get_ticket(ticket)
    assert current.status == "solved"
    connector.update_ticket(
        ticket,
        TicketUpdate(note="Fixed", remove_tags=("syncd_stage_assigned",), status="open", status_from=("solved",)),
        KEY[::-1],
        current,
    )
    assert connector.find_marker(ticket, KEY)
    connector.update_ticket(
        f"c{convo}",
        TicketUpdate(note="A note", fields={"Linked issue": "ENG-3"}, add_tags=("syncd_linked",), status="solved"),
        KEY,
    )
    connector.update_ticket(f"c{convo}", TicketUpdate(status="open", remove_tags=("syncd_linked",)), KEY)
    connector.create_follow_up(ticket, FollowUpTicket("Follow-up", "We fixed it"), "f" * 20)
    assert connector.find_follow_up(ticket, "f" * 20) == ticket
    with pytest.raises(NotFound):
        connector.get_ticket(fake.exam_missing())
    list(connector.poll(pages[-1].cursor))
    seen = conform(recorder.responses, intercom_contract)
    for expected in (
        "GET /me",
        "GET /ticket_types",
        "POST /tickets/search",
        "POST /conversations/search",
        "GET /conversations/{conversation_id}",
        "GET /contacts/{contact_id}",
        "PUT /tickets/{ticket_id}",
        "POST /tickets/{ticket_id}/reply",
        "POST /tickets/{ticket_id}/tags",
        "DELETE /tickets/{ticket_id}/tags/{tag_id}",
        "GET /tickets/{ticket_id}",
        "GET /tags",
        "POST /tags",
        "GET /ticket_states",
        "PUT /conversations/{conversation_id}",
        "POST /conversations/{conversation_id}/reply",
        "POST /conversations/{conversation_id}/parts",
        "POST /conversations/{conversation_id}/tags",
        "DELETE /conversations/{conversation_id}/tags/{tag_id}",
    ):
        assert expected in seen, f"{expected} was not exercised"


def test_refusals_conform_too(world, intercom_contract):
    fake, _, _ = world
    connector = make(fake, token="not-a-sandbox-token")
    recorder = Recorder(connector)
    with pytest.raises(AuthError):
        connector.check()
    assert [r.status_code for r in recorder.responses] == [401]
    conform(recorder.responses, intercom_contract)


def test_a_request_outside_the_description_is_caught(intercom_contract):
    """The check can fail: a body the description refuses is reported."""
    bad = requests.Request(
        "POST",
        "https://api.intercom.io/tickets/1/reply",
        json={"message_type": "memo", "type": "admin", "admin_id": "1", "body": "x"},
        headers={"Authorization": "Bearer t"},
    )
    with pytest.raises(AssertionError, match="does not conform"):
        intercom_contract.validate(bad)


def test_the_story_world_s_exchanges_conform_syncd_s_and_the_agents(tmp_path, intercom_contract, monkeypatch):
    """The sandbox's story world with Intercom (IntercomWorld: snoozed and resolved tickets, companies
    with plans, a multi-line attribute): syncd's first sync and its writes, and the agents' own
    requests through the API (a note, tags, a state, an attribute), all as the description says."""
    from connectors.intercom.seed import IntercomWorld
    from syncd.sandbox.harness import Playground
    from syncd.sandbox.seed import customer_email

    agents: list[requests.Response] = []
    session = IntercomWorld.agent_session

    def recorded(self, agent: str = "Priya Raman") -> requests.Session:
        s = session(self, agent)
        s.hooks["response"].append(lambda response, *a, **k: agents.append(response))
        return s

    monkeypatch.setattr(IntercomWorld, "agent_session", recorded)
    with Playground(tmp_path, helpdesk="intercom", trackers=("linear",)) as pg:
        app = pg.app()
        try:
            recorder = Recorder(app.engine.helpdesk)  # type: ignore[arg-type]
            assert app.engine.cycle().ok
            ticket = pg.desk.customer_opens(
                "Export is slow",
                "The export takes ten minutes.",
                customer=customer_email("hannah"),
                agent="Priya Raman",
                organization="Northwind Logistics",
            )
            pg.desk.agent_set_tags(ticket, ["escalated", "export"])
            pg.desk.agent_set_tags(ticket, ["escalated"])
            pg.desk.agent_note(ticket, "Steps: export a month.\nExpected: a minute.", public=False)
            pg.desk.agent_note(ticket, "We are on it.", public=True)
            pg.desk.agent_set_field(ticket, pg.seed.severity_field_id, "sev3")
            pg.desk.agent_set_status(ticket, "pending")
            assert app.engine.cycle().ok
        finally:
            app.close()
    seen = conform(recorder.responses, intercom_contract)
    assert {"POST /tickets/search", "GET /conversations/{conversation_id}", "PUT /tickets/{ticket_id}"} <= set(seen)
    theirs = conform(agents, intercom_contract)
    for expected in ("POST /tags", "POST /tickets/{ticket_id}/tags", "POST /tickets/{ticket_id}/reply"):
        assert expected in theirs, expected
