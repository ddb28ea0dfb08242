"""Zendesk's part of the sandbox world: the support desk's tickets, the agents' acts, the tickets as agents see them.

The story's tickets (:data:`syncd.sandbox.seed.TICKETS`: about twenty in
varied states, some already flagged for product and a few already naming an
issue of the tracker the seed links first) as Zendesk tickets, the issue in
the "Linked issue" field, so the demo has handoffs in every stage to show.
The custom fields are the ones the example mappings use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator

import requests

from connectors.zendesk.fake import SANDBOX_TOKEN, ZendeskFake
from syncd.sandbox.seed import (
    AGENTS,
    AREAS,
    CUSTOMERS,
    ESCALATION_TAG,
    ORGANIZATIONS,
    SEVERITIES,
    TICKETS,
    SeedResult,
    World,
    agent_email,
    customer_email,
)
from syncd.sandbox.world import HelpdeskWorld, TicketView, back_dated


class ZendeskWorld(HelpdeskWorld):
    offers_story = True
    fake: ZendeskFake

    def setup(self, world: World) -> None:
        zendesk, result = self.fake, world.result
        with back_dated(zendesk, world.start):
            linked = zendesk.add_ticket_field(
                "Linked issue", "text", description="The tracker issue this ticket waits on (set by syncd)."
            )
            linked_status = zendesk.add_ticket_field(
                "Linked issue status", "text", description="Status of the linked issue (set by syncd)."
            )
            severity = zendesk.add_ticket_field("Severity", "tagger", options=SEVERITIES)
            area = zendesk.add_ticket_field("Product area", "tagger", options=[(a.title(), a) for a in AREAS])
            stage = zendesk.add_ticket_field(
                "Follow-up stage", "text", description="Where the follow-up stands in the handoff (set by syncd)."
            )
            missing = zendesk.add_ticket_field(
                "Handoff: still missing",
                "textarea",
                description="What a flagged ticket needs before it goes to product (set by syncd).",
            )
            result.linked_issue_field_id = linked["id"]
            result.linked_issue_status_field_id = linked_status["id"]
            result.severity_field_id = severity["id"]
            result.product_area_field_id = area["id"]
            result.stage_field_id = stage["id"]
            result.missing_field_id = missing["id"]
            for name, plan, domain in ORGANIZATIONS:
                org = zendesk.add_organization(name, plan=plan, domain_names=[domain], tags=[plan])
                result.organizations[name] = org["id"]
            for name, local in AGENTS:
                result.agents[name] = zendesk.add_user(name, agent_email(local), role="agent")["id"]
            for name, local, org_name in CUSTOMERS:
                email = customer_email(local)
                org_id = result.organizations[org_name]
                result.customers[email] = zendesk.add_user(name, email, organization_id=org_id)["id"]
            self._tier1 = zendesk.add_group("Support")
            zendesk.add_group("Escalations")

    def records(self, world: World, moments: Iterator[datetime]) -> None:
        zendesk, result, rng = self.fake, world.result, world.rng
        agents = list(result.agents.values())
        for key, local, subject, description, status, ticket_priority, tags, sev, product, issue_key in TICKETS:
            requester = result.customers[customer_email(local)]
            fields: dict[int, Any] = {}
            if sev:
                fields[result.severity_field_id] = sev
            if product:
                fields[result.product_area_field_id] = product
            with back_dated(zendesk, next(moments)):
                ticket = zendesk.create_ticket(
                    subject,
                    description,
                    requester_id=requester,
                    priority=ticket_priority,
                    custom_fields=fields,
                    tags=[t for t in tags if t != ESCALATION_TAG],
                )
            result.tickets[key] = ticket["id"]
            if status == "new":
                continue
            agent = agents[rng.randrange(len(agents))]
            with back_dated(zendesk, next(moments)):
                zendesk.update_ticket(
                    ticket["id"], author_id=agent, assignee_id=agent, group_id=self._tier1["id"], status="open"
                )
                zendesk.add_comment(
                    ticket["id"], "Thanks for the report, we are looking into it.", public=True, author_id=agent
                )
            changes: dict[str, Any] = {}
            if ESCALATION_TAG in tags:
                changes["additional_tags"] = [ESCALATION_TAG]
            if issue_key:
                changes["custom_fields"] = {result.linked_issue_field_id: world.linked_key(issue_key)}
            if status != "open":
                changes["status"] = status
            if changes:
                with back_dated(zendesk, next(moments)):
                    note = "Escalated to product." if ESCALATION_TAG in tags else "Updated."
                    zendesk.add_comment(ticket["id"], note, public=False, author_id=agent)
                    zendesk.update_ticket(ticket["id"], author_id=agent, **changes)

    def config_lines(self, result: SeedResult) -> list[str]:
        return [
            f"link_field_id = {result.linked_issue_field_id}",
            f"status_field_id = {result.linked_issue_status_field_id}",
        ]

    # -- agents and customers -----------------------------------------------------------------

    def agent_session(self, agent: str = "Priya Raman") -> requests.Session:
        user = next(u for u in self.fake.users.values() if u["name"] == agent)
        session = requests.Session()
        session.auth = (f"{user['email']}/token", SANDBOX_TOKEN)  # agents use the account's API token
        return session

    def agent_note(self, ticket_id: Any, body: str, *, agent: str = "Priya Raman", public: bool = False) -> dict:
        return self._put_ticket(ticket_id, {"comment": {"body": body, "public": public}}, agent)

    def agent_set_tags(self, ticket_id: Any, tags: list[str], *, agent: str = "Priya Raman") -> dict:
        return self._put_ticket(ticket_id, {"tags": tags}, agent)

    def agent_set_status(self, ticket_id: Any, status: str, *, agent: str = "Priya Raman") -> dict:
        return self._put_ticket(ticket_id, {"status": status}, agent)

    def agent_set_field(self, ticket_id: Any, field_id: Any, value: str, *, agent: str = "Priya Raman") -> None:
        user = next(u for u in self.fake.users.values() if u["name"] == agent)
        self.fake.update_ticket(ticket_id, author_id=user["id"], custom_fields={field_id: value})

    def _put_ticket(self, ticket_id: Any, ticket: dict, agent: str) -> dict:
        response = self.agent_session(agent).put(
            f"{self.url}/api/v2/tickets/{ticket_id}", json={"ticket": ticket}, timeout=10
        )
        response.raise_for_status()
        return response.json()["ticket"]

    def customer_opens(self, subject: str, body: str, *, customer: str, agent: str, organization: str) -> Any:
        users = self.fake.users.values()
        requester = next(u for u in users if u["email"] == customer)
        assignee = next(u for u in users if u["name"] == agent)
        org = next(o for o in self.fake.organizations.values() if o["name"] == organization)
        return self.fake.create_ticket(
            subject,
            body,
            requester_id=requester["id"],
            status="open",
            assignee_id=assignee["id"],
            organization_id=org["id"],
        )["id"]

    def automation_closes(self, ticket_id: Any) -> None:
        self.fake.close_ticket(ticket_id)

    # -- what agents see ----------------------------------------------------------------------

    def field(self, ticket_id: Any, field_id: Any) -> str | None:
        value = self.fake.field_value(ticket_id, field_id)
        return None if value is None else str(value)

    def view(self, ticket_id: Any) -> TicketView:
        ticket = self.fake.ticket(ticket_id)
        return TicketView(
            id=ticket["id"],
            subject=ticket["subject"],
            status=ticket["status"],
            tags=list(ticket["tags"]),
            notes=[c["body"] for c in self.fake.ticket_comments(ticket["id"])],
        )

    def follow_ups(self) -> list[TicketView]:
        return [
            self.view(t) for t in self.fake.tickets if self.fake.ticket(t)["via"]["source"].get("rel") == "follow_up"
        ]
