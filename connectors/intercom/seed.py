"""Intercom's part of the sandbox world: the story's tickets as Intercom tickets, the agents' acts, what agents see.

The support desk (:data:`syncd.sandbox.seed.TICKETS`) in Intercom's words:
one ticket type ("Customer request") with the text attributes syncd reads
and writes, the organisations as companies (their plan the tier), the
customers as contacts, the agents as admins. A ticket's status becomes a
ticket state: new is ``submitted`` with nobody assigned, open
``in_progress``, pending ``waiting_on_customer``, hold ``in_progress``
snoozed, solved ``resolved``. Intercom has no "closed for good": a seeded
ticket Zendesk's automation would have closed is resolved here, and
Intercom reopens it on request.

The example mappings name custom fields by the sandbox's ids; an Intercom
ticket attribute is named by its name, so this part's field ids are the
attribute names ("Severity", "Follow-up stage", "Handoff: still missing"),
and ``syncd demo`` writes those into its copy of the examples. Severity is a
text attribute here holding ``sev1`` to ``sev4``, the values the examples
expect.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from typing import Any, Iterator

import requests

from connectors.intercom.connector import API_VERSION, WRITE_STATES, html_text
from connectors.intercom.fake import SANDBOX_TOKEN, IntercomFake
from syncd.sandbox.seed import (
    AGENTS,
    CUSTOMERS,
    ESCALATION_TAG,
    ORGANIZATIONS,
    TICKETS,
    SeedResult,
    World,
    agent_email,
    customer_email,
)
from syncd.sandbox.world import HelpdeskWorld, TicketView, back_dated

# The attributes on the ticket type, by what they are for (the connector's
# status_attribute, link_attribute and stage_attribute; the examples' fields).
LINK, STATUS = "Linked issue", "Linked issue status"
SEVERITY, AREA = "Severity", "Product area"
STAGE, MISSING = "Follow-up stage", "Handoff: still missing"
# A held ticket is snoozed this long (Intercom's "snooze").
HOLD = timedelta(days=7)


def paragraphs(text: str) -> str:
    """Plain text as the HTML an agent's editor makes: a paragraph a line, escaped."""
    return "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip())


class IntercomWorld(HelpdeskWorld):
    offers_story = True
    closes_for_good = False  # a resolved ticket is closed, and reopens on request
    fake: IntercomFake

    def setup(self, world: World) -> None:
        intercom, result = self.fake, world.result
        type_id = intercom.default_type["id"]
        with back_dated(intercom, world.start):
            for name in (LINK, STATUS, SEVERITY, AREA, STAGE):
                intercom.add_ticket_attribute(type_id, name)
            intercom.add_ticket_attribute(type_id, MISSING, multiline=True)
            result.linked_issue_field_id = LINK
            result.linked_issue_status_field_id = STATUS
            result.severity_field_id = SEVERITY
            result.product_area_field_id = AREA
            result.stage_field_id = STAGE
            result.missing_field_id = MISSING
            for name, plan, _ in ORGANIZATIONS:
                result.organizations[name] = intercom.add_company(name, plan=plan)["id"]
            for name, local in AGENTS:
                result.agents[name] = intercom.add_admin(name, agent_email(local))["id"]
            for name, local, org_name in CUSTOMERS:
                email = customer_email(local)
                contact = intercom.add_contact(name, email, company_id=result.organizations[org_name])
                result.customers[email] = contact["id"]

    def records(self, world: World, moments: Iterator[datetime]) -> None:
        intercom, result, rng = self.fake, world.result, world.rng
        agents = list(result.agents.values())
        for key, local, subject, description, status, priority, tags, sev, product, issue_key in TICKETS:
            attributes = {name: value for name, value in ((SEVERITY, sev), (AREA, product)) if value}
            with back_dated(intercom, next(moments)):
                ticket = intercom.create_ticket(
                    subject,
                    paragraphs(description),
                    contact_id=result.customers[customer_email(local)],
                    attributes=attributes,
                    tags=[t for t in tags if t != ESCALATION_TAG],
                    priority=priority in ("high", "urgent"),  # Intercom marks a priority, no levels
                )
            result.tickets[key] = ticket["id"]
            if status == "new":
                continue
            agent = agents[rng.randrange(len(agents))]  # drawn as every helpdesk's part draws it
            with back_dated(intercom, next(moments)):
                intercom.assign(ticket["id"], agent)
                intercom.set_state(ticket["id"], "in_progress", admin_id=agent)
                intercom.admin_reply(
                    ticket["id"], "<p>Thanks for the report, we are looking into it.</p>", admin_id=agent
                )
            if ESCALATION_TAG in tags or issue_key or status != "open":
                when = next(moments)
                with back_dated(intercom, when):
                    note = "Escalated to product." if ESCALATION_TAG in tags else "Updated."
                    intercom.admin_note(ticket["id"], f"<p>{note}</p>", admin_id=agent)
                    if ESCALATION_TAG in tags:
                        intercom.add_tag(ticket["id"], ESCALATION_TAG)
                    if issue_key:
                        intercom.set_attribute(ticket["id"], LINK, world.linked_key(issue_key))
                    if status == "hold":
                        intercom.snooze(ticket["id"], int((when + HOLD).timestamp()), admin_id=agent)
                    elif status != "open":
                        category = WRITE_STATES["solved" if status == "closed" else status]
                        intercom.set_state(ticket["id"], category, admin_id=agent)

    def config_lines(self, result: SeedResult) -> list[str]:
        return [
            f'status_attribute = "{result.linked_issue_status_field_id}"',
            f'stage_attribute = "{result.stage_field_id}"',
            f'link_attribute = "{result.linked_issue_field_id}"',
        ]

    # -- agents and customers, through the API --------------------------------------------

    def _admin(self, agent: str) -> str:
        return next(a["id"] for a in self.fake.admins.values() if a["name"] == agent)

    def agent_session(self, agent: str = "Priya Raman") -> requests.Session:
        """The workspace's access token (an app acts for the admin it names in each write)."""
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {SANDBOX_TOKEN}", "Intercom-Version": API_VERSION})
        return session

    def _call(self, method: str, path: str, body: dict | None, agent: str) -> dict:
        response = self.agent_session(agent).request(method, f"{self.url}{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def agent_note(self, ticket_id: Any, body: str, *, agent: str = "Priya Raman", public: bool = False) -> dict:
        return self._call(
            "POST",
            f"/tickets/{ticket_id}/reply",
            {
                "type": "admin",
                "message_type": "comment" if public else "note",
                "admin_id": self._admin(agent),
                "body": paragraphs(body),
            },
            agent,
        )

    def agent_set_tags(self, ticket_id: Any, tags: list[str], *, agent: str = "Priya Raman") -> dict:
        admin = self._admin(agent)
        have = {t: self.fake.tag_named(t)["id"] for t in self.fake.tag_names(ticket_id)}
        for name in tags:
            if name not in have:
                tag = self._call("POST", "/tags", {"name": name}, agent)
                self._call("POST", f"/tickets/{ticket_id}/tags", {"id": tag["id"], "admin_id": admin}, agent)
        for name, tag_id in have.items():
            if name not in tags:
                self._call("DELETE", f"/tickets/{ticket_id}/tags/{tag_id}", {"admin_id": admin}, agent)
        return self._call("GET", f"/tickets/{ticket_id}", None, agent)

    def agent_set_status(self, ticket_id: Any, status: str, *, agent: str = "Priya Raman") -> dict:
        category = WRITE_STATES[status]
        state = next(s["id"] for s in self.fake.ticket_states.values() if s["category"] == category)
        body = {"ticket_state_id": state, "admin_id": int(self._admin(agent))}  # an integer in PUT /tickets/{id}
        return self._call("PUT", f"/tickets/{ticket_id}", body, agent)

    def agent_set_field(self, ticket_id: Any, field_id: Any, value: str, *, agent: str = "Priya Raman") -> None:
        self._call(
            "PUT",
            f"/tickets/{ticket_id}",
            {"ticket_attributes": {field_id: value}, "admin_id": int(self._admin(agent))},
            agent,
        )

    def customer_opens(self, subject: str, body: str, *, customer: str, agent: str, organization: str) -> Any:
        contact = next(c for c in self.fake.contacts.values() if c["email"] == customer)
        return self.fake.create_ticket(
            subject,
            paragraphs(body),
            contact_id=contact["id"],
            state="in_progress",
            admin_assignee_id=self._admin(agent),
        )["id"]

    def automation_closes(self, ticket_id: Any) -> None:
        """Intercom closes a resolved ticket (``open: false``); it still reopens on request."""
        if self.fake.record(ticket_id)["open"]:
            self.fake.set_state(ticket_id, "resolved")

    # -- what agents see ---------------------------------------------------------------------

    def field(self, ticket_id: Any, field_id: Any) -> str | None:
        value = self.fake.attribute(ticket_id, field_id)
        return None if value in (None, "") else str(value)

    def view(self, ticket_id: Any) -> TicketView:
        record = self.fake.record(ticket_id)
        state = self.fake.ticket_states[record["ticket"]["state_id"]]["internal_label"]
        if record["snoozed_until"]:
            state += " (snoozed)"
        return TicketView(
            id=record["id"],
            subject=record["title"],
            status=state if record["open"] else f"{state} (closed)",
            tags=self.fake.tag_names(ticket_id),
            notes=[html_text(p["body"] or "") for p in record["parts"] if p["body"]],
        )

    def follow_ups(self) -> list[TicketView]:
        """None: what stands in for a follow-up ticket is the same ticket, reopened (docs/intercom.md)."""
        return []

    def ticket_word(self, ticket_id: Any) -> str:
        """The number the inbox shows beside the title ("#12"), not the id the API takes."""
        return f"#{self.fake.record(ticket_id)['ticket']['ticket_id']}"
