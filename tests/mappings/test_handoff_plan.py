"""Pure planning of the handoff's writes: needs-context note, escalation, promises, owner gaps, demand."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone

import pytest

from mappings.acceptance import HasTag
from mappings.calendar import BusinessCalendar, Duration
from mappings.handoff_plan import (
    DemandTicket,
    demand_body,
    demand_inputs,
    plan_demand,
    plan_follow_up_ticket,
    plan_handoff,
    plan_missing,
    plan_owner_gap,
    plan_promise_broken,
    plan_promise_due,
    show_time,
)
from mappings.planner import opaque_ref
from mappings.promises import PromiseRule, handoff_promises, new_promise, on_cancel, on_issue_resolved
from mappings.routes import Route
from mappings.stages import OwnerGap
from syncd.records import Customer, Issue, Organization, Ref, Stage, StateCategory, Ticket
from syncd.writes import ISSUE_COMMENT, ISSUE_CREATE, ISSUE_UPSERT, TICKET_FOLLOW_UP, TICKET_UPDATE

AT = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)  # Monday 10:00 in Berlin
BERLIN = BusinessCalendar("Europe/Berlin")
RULE = PromiseRule(
    "standard", calendar=BERLIN, update_within=Duration(2, "days", True), respond_within=Duration(1, "days", True)
)


def rendered(markdown: str) -> str:
    """What a reader sees: Markdown escapes and word joiners gone."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def ticket(**kw) -> Ticket:
    base = dict(
        ref=Ref("zendesk", "7"),
        key="#7",
        url="https://acme.zendesk.com/agent/tickets/7",
        subject="Export *fails* <b>",
        status="open",
        updated_at=AT,
        requester=Customer("u1", "Hannah Berg", "hannah@example.com"),
        organization=Organization("o1", "Northwind", "enterprise"),
        assignee_id="a1",
        fields={"sev": "sev2"},
        tags=("escalated",),
    )
    base.update(kw)
    return Ticket(**base)


def issue(**kw) -> Issue:
    base = dict(
        ref=Ref("linear", "uuid-1"),
        key="ENG-9",
        url="https://linear.app/x/issue/ENG-9",
        title="Export fails",
        state=StateCategory.COMPLETED,
        state_name="Done",
        updated_at=AT,
        team="ENG",
    )
    base.update(kw)
    return Issue(**base)


ROUTE = Route(
    "product",
    "linear",
    "ENG",
    escalate_tag="escalated",
    promises=RULE,
    severity_field="sev",
    severity_order=("sev1", "sev2", "sev3"),
    criteria=(HasTag("steps to reproduce", tags=("has-steps",)),),
)


def test_the_missing_note_is_written_once_and_again_only_for_something_new():
    first = plan_missing(ticket(), ROUTE, ["steps", "impact"], [], missing_field="99", shown=None)
    [action] = first.plan.actions
    assert action.op == TICKET_UPDATE and "- steps\n- impact" in action.write.payload()["note"]
    assert action.write.payload()["fields"] == {"99": "- steps\n- impact"}
    assert first.noted == ("steps", "impact")
    assert [e.kind for e in first.plan.events] == ["handoff_rejected"]

    fewer = plan_missing(ticket(), ROUTE, ["impact"], first.noted, missing_field="99", shown=first.field_value)
    [action] = fewer.plan.actions
    assert "note" not in action.write.payload() and action.write.payload()["fields"] == {
        "99": "- impact"
    }  # in place only
    assert fewer.plan.events == []

    same = plan_missing(ticket(), ROUTE, ["impact"], fewer.noted, missing_field="99", shown=fewer.field_value)
    assert same.plan.actions == []  # nothing changed: nothing written

    regressed = plan_missing(
        ticket(), ROUTE, ["impact", "severity"], fewer.noted, missing_field="99", shown=fewer.field_value
    )
    assert "- impact\n- severity" in regressed.plan.actions[0].write.payload()["note"]
    # Replanning the same input plans the same key (the outbox refuses it).
    again = plan_missing(
        ticket(), ROUTE, ["impact", "severity"], fewer.noted, missing_field="99", shown=fewer.field_value
    )
    assert again.plan.actions[0].key == regressed.plan.actions[0].key


def test_with_html_notes_the_missing_field_still_shows_plain_words():
    """An HTML helpdesk: the note escapes the labels for HTML, the field (shown as written) does not,
    so the shown value compares equal on the next plan and nothing is rewritten."""
    first = plan_missing(ticket(), ROUTE, ["customer's steps"], [], missing_field="99", note_format="html")
    [action] = first.plan.actions
    assert "customer&#x27;s steps" in action.write.payload()["note"]
    assert action.write.payload()["fields"] == {"99": "- customer's steps"}
    again = plan_missing(
        ticket(),
        ROUTE,
        ["customer's steps"],
        first.noted,
        missing_field="99",
        shown="- customer's steps",
        note_format="html",
    )
    assert again.plan.actions == []


def test_escalation_to_a_private_tracker_carries_the_handoff_record():
    promises = handoff_promises(RULE, Ref("zendesk", "7"), (), AT)
    plan = plan_handoff(ticket(), ROUTE, note="Steps: 1. open 2. export", promises=promises, customer_count=1)
    [action] = plan.actions
    assert action.op == ISSUE_CREATE and action.connector == "linear" and action.target == "ENG"
    body = action.write.payload()["private"]["body"]
    assert "https://acme.zendesk.com/agent/tickets/7" in body  # the URL stays a link
    assert "1\\. open" in body  # the agent's note is inert Markdown: no list is started
    shown = rendered(body)
    assert "Northwind (enterprise)" in shown and "sev2" in shown and "Steps: 1. open 2. export" in shown
    assert "an update within 2 business days (by Wed 25 Nov 2026 10:00 CET)" in shown
    assert action.write.payload()["private"]["title"] == "Export *fails* <b>"  # a title is plain text
    again = plan_handoff(ticket(tags=("escalated", "other")), ROUTE, note=None, promises=[], customer_count=1)
    assert again.actions[0].key == action.key  # flagging again: the same key, created once
    rework = plan_handoff(ticket(), ROUTE, note=None, promises=[], customer_count=1, epoch="2026-12-01T10:00:00Z")
    assert rework.actions[0].key != action.key


def test_escalation_to_a_public_tracker_names_no_customer():
    plan = plan_handoff(ticket(), ROUTE, note="Hannah at Northwind, hannah@example.com", promises=[], customer_count=3)
    payload = plan.actions[0].write.payload()["public"]  # the draft delivery sends where the team is public
    text = payload["title"] + payload["body"]
    for secret in ("Northwind", "Hannah", "hannah@example.com", "Export", "acme.zendesk.com"):
        assert secret not in text
    ref = opaque_ref(Ref("zendesk", "7"))
    assert ref in payload["title"] and ref in payload["body"]  # as typed: searchable in the tracker


def test_promise_due_note_names_the_promise_and_the_deadline_in_the_team_time_zone():
    promise = new_promise(
        Ref("zendesk", "7"), "news when the linked work ships", AT, origin="rule", trigger="issue_resolved"
    )
    due = on_issue_resolved(promise, AT, respond_by=BERLIN.add(AT, Duration(1, "days", True)))
    note = plan_promise_due(ticket(), [issue()], [due], ROUTE)
    assert "ENG-9 is Done" in note and "news when the linked work ships" in note
    assert "Tue 24 Nov 2026 10:00 CET" in note


def test_a_closed_ticket_is_followed_up_by_a_new_ticket_with_the_same_requester():
    plan = plan_follow_up_ticket(ticket(status="closed"), [issue()], "tell them", ROUTE, AT)
    [action] = plan.actions
    assert action.op == TICKET_FOLLOW_UP and action.target == "7"
    assert action.write.payload()["requester_id"] == "u1" and action.write.payload()["note"].endswith("tell them")
    assert plan_follow_up_ticket(ticket(status="closed"), [issue()], "other", ROUTE, AT).actions[0].key == action.key


def test_a_broken_promise_is_a_note_and_a_tag_but_nothing_on_a_closed_ticket():
    promise = new_promise(Ref("zendesk", "7"), "an update within 2 business days", AT, origin="rule", due_at=AT)
    plan = plan_promise_broken(ticket(), promise, ROUTE, tag="broken")
    [action] = plan.actions
    assert (
        action.write.payload()["add_tags"] == ["broken"]
        and "Mon 23 Nov 2026 10:00 CET" in action.write.payload()["note"]
    )
    closed = plan_promise_broken(ticket(status="closed"), promise, ROUTE, tag="broken")
    assert closed.actions == [] and [e.kind for e in closed.events] == ["promise_broken"]


def test_owner_gaps_are_noted_on_the_side_that_lacks_an_owner():
    gap = OwnerGap("ticket", Ref("zendesk", "7"), AT)
    [action] = plan_owner_gap(ticket(), gap, Stage.WAITING, ROUTE, None, triage_sla="4 business hours").actions
    assert action.op == TICKET_UPDATE and action.key == gap.key and "Waiting" in action.write.payload()["note"]
    gap = OwnerGap("issue", Ref("linear", "uuid-1"), AT)
    plan = plan_owner_gap(ticket(), gap, Stage.ASSIGNED, ROUTE, issue(assignee=None), triage_sla="4 business hours")
    [action] = plan.actions
    assert (
        action.op == ISSUE_COMMENT
        and action.target == "uuid-1"
        and "ENG-9 has had no assignee" in rendered(action.write.payload()["body"])
    )
    assert "Northwind" not in action.write.payload()["body"]


def test_demand_counts_tickets_and_organisations_and_names_customers_only_where_private():
    from mappings.routes import builtin_templates

    tickets = [
        DemandTicket(ticket(), "sev2", 1),
        DemandTicket(ticket(ref=Ref("zendesk", "8"), organization=Organization("o2", "Acme", None)), "sev1", 0),
        DemandTicket(ticket(ref=Ref("zendesk", "9")), None, None),
    ]
    promise = new_promise(Ref("zendesk", "7"), "an update within 2 business days", AT, origin="rule", due_at=AT)
    private = demand_body(issue(), tickets, [promise], private=True, templates=builtin_templates(), calendar=BERLIN)
    assert "3 ticket(s) from 2 organisation(s)" in private and "highest severity sev1" in private
    assert "Northwind" in private and "Acme" in private and "an update within 2 business days" in private
    public = demand_body(issue(), tickets, [promise], private=False, templates=builtin_templates(), calendar=BERLIN)
    assert "Northwind" not in public and "Acme" not in public and "3 ticket(s)" in public

    first = plan_demand(issue(), private, 1, private=True)
    assert first.op == ISSUE_UPSERT and first.write.payload()["slot"] == "demand"
    # The same text at a later version is a new write (it may have changed in between).
    assert plan_demand(issue(), private, 2, private=True).key != first.key
    assert plan_demand(issue(), private, 1, private=True).key == first.key


def test_the_demand_inputs_digest_moves_with_every_input_of_the_text_and_only_with_them():
    from mappings.routes import builtin_templates
    from mappings.templates import Template

    templates = builtin_templates()
    tickets = [DemandTicket(ticket(), "sev2", 1), DemandTicket(ticket(ref=Ref("zendesk", "8")), None, None)]
    promise = new_promise(Ref("zendesk", "7"), "an update within 2 business days", AT, origin="rule", due_at=AT)

    def digest(i=None, ts=tickets, ps=(promise,), private=True, tpl=templates, cal=BERLIN, fmt="markdown"):
        return demand_inputs(i or issue(), ts, list(ps), private=private, templates=tpl, calendar=cal, fmt=fmt)

    same = digest()
    # Something the text does not read (the ticket's subject) leaves it; a new issue object too.
    assert digest(ts=[DemandTicket(ticket(subject="other words"), "sev2", 1), tickets[1]]) == same
    assert digest(i=issue()) == same
    # A newer promise, or the same one fallen due, leaves the oldest open promise the text shows.
    later = new_promise(
        Ref("zendesk", "8"), "a reply", datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc), origin="tag", due_at=AT
    )
    assert digest(ps=(promise, later)) == same and digest(ps=(on_issue_resolved(promise, AT),)) == same
    moved = [
        digest(ts=[DemandTicket(ticket(organization=Organization("o2", "Acme", None)), "sev2", 1), tickets[1]]),
        digest(ts=[DemandTicket(ticket(organization=Organization("o1", "Northwind", "gold")), "sev2", 1), tickets[1]]),
        digest(ts=[DemandTicket(ticket(), "sev1", 0), tickets[1]]),
        digest(ts=tickets[:1]),
        digest(ts=tickets[::-1]),
        digest(ps=(on_cancel(promise, AT, "no longer a follow-up"),)),
        digest(
            ps=(
                promise,
                new_promise(
                    Ref("zendesk", "8"), "a reply", datetime(2026, 11, 1, tzinfo=timezone.utc), origin="tag", due_at=AT
                ),
            )
        ),
        digest(private=False),
        digest(tpl={**templates, "demand": Template("demand", "{ticket_count} asking")}),
        digest(cal=BusinessCalendar("UTC")),
        digest(fmt="html"),
    ]
    assert same not in moved and len(set(moved)) == len(moved)
    # No promise open and none at all: the same text ("none"), the same digest.
    assert digest(ps=()) == digest(ps=(on_cancel(promise, AT, "no longer a follow-up"),))


def test_the_demand_inputs_digest_is_the_same_in_another_process():
    import subprocess
    import sys

    code = (
        "from datetime import date;"
        "from mappings.calendar import BusinessCalendar;"
        "from mappings.handoff_plan import demand_inputs;"
        "from mappings.routes import builtin_templates;"
        "from tests.mappings.test_handoff_plan import issue;"
        "days = frozenset({date(2026, 12, 25), date(2026, 1, 1), date(2026, 5, 1)});"
        "cal = BusinessCalendar('Europe/Berlin', frozenset({0, 1, 2}), holidays=days);"
        "print(demand_inputs(issue(), [], [], private=True, templates=builtin_templates(), calendar=cal))"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(seen) == 1 and next(iter(seen)).strip()


@pytest.mark.parametrize(
    "at, shown",
    [
        (datetime(2026, 7, 1, 15, 0, tzinfo=timezone.utc), "Wed 01 Jul 2026 17:00 CEST"),
        (datetime(2026, 1, 1, 15, 0, tzinfo=timezone.utc), "Thu 01 Jan 2026 16:00 CET"),
    ],
)
def test_times_are_shown_in_the_team_time_zone(at, shown):
    assert show_time(at, BERLIN) == shown
