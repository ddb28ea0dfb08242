"""The handoff end to end through the sandbox, with the shipped example mappings.

Escalation: an incomplete flagged ticket gets one needs-context note and a
field that always shows what is missing; once the agent completes it, syncd
creates the issue in the routed tracker once, links it and moves the ticket
on. Promises: due when the work resolves, kept by a public reply, broken by
the clock (time injected), and a closed ticket followed up by a new one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from syncd.records import PromiseState, Ref, Stage
from tests.e2e.handoff_support import MondayClock, cycle, handoff_playground

pytestmark = pytest.mark.e2e

PREFIX = "syncd_stage_"


@pytest.fixture
def clock():
    return MondayClock()


@pytest.fixture
def pg(tmp_path, clock):
    with handoff_playground(tmp_path, clock) as playground:
        playground.stage_field_id = playground.seed.stage_field_id
        playground.missing_field_id = playground.seed.missing_field_id
        yield playground


@pytest.fixture
def app(pg, clock):
    app = pg.app(clock=clock)
    assert app.engine.cycle().ok  # the first sync of the seeded desk
    yield app
    app.close()


def new_ticket(pg, subject: str, description: str, *, severity: str | None = None, tags=()) -> int:
    """A customer of Northwind opens a ticket; Priya is its agent."""
    zendesk = pg.zendesk
    customer = next(u for u in zendesk.users.values() if u.get("organization_id") and u["role"] == "end-user")
    agent = next(u for u in zendesk.users.values() if u["name"] == "Priya Raman")
    fields = {pg.seed.severity_field_id: severity} if severity else {}
    ticket = zendesk.create_ticket(
        subject,
        description,
        requester_id=customer["id"],
        status="open",
        tags=list(tags),
        custom_fields=fields,
        assignee_id=agent["id"],
        organization_id=customer["organization_id"],
    )
    return ticket["id"]


def handed_over(pg, app, clock) -> int:
    """A new ticket about the CSV export, linked by the agent to the seeded issue: the handoff makes promises.

    (Tickets found already linked on the first sync were handed over before syncd watched: no promises.)"""
    ticket = new_ticket(
        pg, "Monthly export times out", "The full-month CSV export fails after 30 seconds.", severity="sev3"
    )
    pg.agent_note(ticket, f"Known problem: {pg.seed.identifiers['csv']}")
    cycle(app, clock)
    return ticket


def created_issues(pg, title: str) -> list[dict]:
    return [i for i in pg.linear.issues.values() if i["title"] == title]


def notes_with(pg, ticket: int, text: str) -> list[str]:
    return [c["body"] for c in pg.zendesk.ticket_comments(ticket) if not c["public"] and text in c["body"]]


def shown(pg, ticket: int) -> tuple[str | None, list[str]]:
    tags = [t for t in pg.zendesk.ticket(ticket)["tags"] if t.startswith(PREFIX)]
    return pg.zendesk.field_value(ticket, pg.stage_field_id), tags


def test_incomplete_escalation_needs_context_then_one_issue_is_created(pg, app, clock):
    subject = "Route planner drops the last stop"
    ticket = new_ticket(pg, subject, "When a route has more than 20 stops the last one is missing.")
    ref = Ref("zendesk", str(ticket))
    cycle(app, clock)
    assert app.store.stage_history(ref) == []  # not flagged: not a follow-up

    # Flagged without severity, steps, expected behaviour or impact: Needs context, one note.
    pg.agent_set_tags(ticket, [*pg.zendesk.ticket(ticket)["tags"], "escalated"])
    cycle(app, clock)
    assert shown(pg, ticket) == ("needs_context", [PREFIX + "needs_context"])
    [note] = notes_with(pg, ticket, "please add")
    for label in ("severity (the Severity field)", "steps to reproduce", "expected behaviour", "customer impact"):
        assert label in note
    assert "the customer's organisation" not in note  # the organisation is known
    assert pg.zendesk.field_value(ticket, pg.missing_field_id).count("\n- ") == 3  # four lines
    assert created_issues(pg, subject) == []

    # The agent adds steps and expected behaviour in an internal note: the field shrinks, no new note.
    pg.agent_note(
        ticket, "Steps: plan a route with 21 stops, open it in the driver app.\nExpected: all 21 stops are shown."
    )
    cycle(app, clock)
    assert len(notes_with(pg, ticket, "please add")) == 1
    left = pg.zendesk.field_value(ticket, pg.missing_field_id)
    assert "steps to reproduce" not in left and "severity" in left and "customer impact" in left
    assert shown(pg, ticket)[0] == "needs_context"

    # Severity and impact: complete. The issue is created once, linked, and the ticket moves on.
    pg.zendesk.update_ticket(ticket, custom_fields={pg.seed.severity_field_id: "sev2"})
    pg.agent_note(ticket, "Impact: every dispatcher at Northwind with long routes is affected.")
    cycle(app, clock)
    [issue] = created_issues(pg, subject)
    assert shown(pg, ticket) == ("assigned", [PREFIX + "assigned"])
    assert pg.zendesk.field_value(ticket, pg.missing_field_id) in ("", None)
    body = issue["description"]
    assert f"/agent/tickets/{ticket}" in body and "Northwind" in body and "sev2" in body
    assert "every dispatcher at Northwind" in body  # the agent's internal note
    assert "an update within 2 business days" in body  # the promise made at the handoff
    links = app.store.links_for_ticket(ref)
    assert [(r.issue.id, r.origin) for r in links] == [(issue["id"], "escalation")]
    assert [s for s, _ in app.store.stage_history(ref)] == [Stage.NEEDS_CONTEXT, Stage.NEW, Stage.ASSIGNED]
    rejected = [e for e in app.store.history(ref) if e.kind == "handoff_rejected"]
    assert len(rejected) == 1
    promises = app.store.promises_for_ticket(ref)
    assert sorted(p.what for p in promises) == ["an update within 2 business days", "news when the linked work ships"]
    assert all(p.issues == (Ref("linear", issue["id"]),) for p in promises)

    # Flagging again creates nothing; a second ticket about the same problem links by key, no new issue.
    pg.agent_set_tags(ticket, [t for t in pg.zendesk.ticket(ticket)["tags"] if t != "escalated"])
    cycle(app, clock)
    pg.agent_set_tags(ticket, [*pg.zendesk.ticket(ticket)["tags"], "escalated"])
    cycle(app, clock)
    other = new_ticket(
        pg, "Last stop missing on long routes", "Same as the other ticket.", severity="sev3", tags=["escalated"]
    )
    pg.agent_note(other, f"Known problem, tracked as {pg.linear.issue(issue['id'])['identifier']}.")
    cycle(app, clock)
    cycle(app, clock)
    assert len(created_issues(pg, subject)) == 1 and created_issues(pg, "Last stop missing on long routes") == []
    assert [r.issue.id for r in app.store.links_for_ticket(Ref("zendesk", str(other)))] == [issue["id"]]

    # The issue shows the demand, kept current in one comment: two tickets now.
    demand = [c for c in pg.linear.issue(issue["id"])["comments"] if "Support demand" in c["body"]]
    assert len(demand) == 1 and "2 ticket(s)" in demand[0]["body"] and "sev2" in demand[0]["body"]


def test_promise_falls_due_when_the_work_ships_and_is_kept_by_a_public_reply(pg, app, clock):
    assert app.store.promises_for_ticket(Ref("zendesk", str(pg.seed.tickets["csv"]))) == []  # the first sync's
    ticket = handed_over(pg, app, clock)
    ref = Ref("zendesk", str(ticket))
    issue = pg.seed.identifiers["csv"]
    promises = app.store.promises_for_ticket(ref)
    assert {p.state for p in promises} == {PromiseState.OPEN}

    pg.engineer_move(issue, "Done")
    cycle(app, clock)
    assert shown(pg, ticket)[0] == "resolved"
    due = [p for p in app.store.promises_for_ticket(ref) if p.state is PromiseState.DUE]
    # Every open promise falls due: the customer hears now.
    assert sorted(p.what for p in due) == ["an update within 2 business days", "news when the linked work ships"]
    [note] = notes_with(pg, ticket, "We promised the customer")  # the example set's promise_due template
    assert "news when the linked work ships" in note and "Please reply to them by Tue 24 Nov 2026" in note
    assert pg.zendesk.ticket(ticket)["status"] == "open"

    pg.agent_note(ticket, "Good news: the export fix is live.", public=True)
    cycle(app, clock)
    assert {p.state for p in app.store.promises_for_ticket(ref)} == {PromiseState.KEPT}
    assert shown(pg, ticket)[0] == "follow_up"


def test_promise_broken_by_the_clock_adds_a_note_a_tag_and_a_count(pg, app, clock):
    ticket = handed_over(pg, app, clock)
    ref = Ref("zendesk", str(ticket))
    [update] = [p for p in app.store.promises_for_ticket(ref) if p.due_at is not None]
    clock.now = update.due_at + timedelta(minutes=1)  # no sleeping: the clock jumps past the deadline
    cycle(app, clock)
    broken = app.store.get_promise(update.id)
    assert broken.state is PromiseState.BROKEN
    assert "syncd_promise_broken" in pg.zendesk.ticket(ticket)["tags"]
    assert len(notes_with(pg, ticket, "Overdue: the customer was promised")) == 1
    cycle(app, clock)
    assert len(notes_with(pg, ticket, "Overdue")) == 1  # noted once
    events = [e for e in app.store.history(ref) if e.kind == "promise_broken"]
    assert len(events) == 1


def test_a_closed_ticket_is_followed_up_by_a_new_ticket(pg, app, clock):
    ticket = handed_over(pg, app, clock)
    ref = Ref("zendesk", str(ticket))
    pg.agent_set_status(ticket, "solved")
    pg.zendesk.close_ticket(ticket)
    cycle(app, clock)
    before = set(pg.zendesk.tickets)

    pg.engineer_move(pg.seed.identifiers["csv"], "Done")
    cycle(app, clock)
    [new_id] = set(pg.zendesk.tickets) - before
    new = pg.zendesk.ticket(new_id)
    assert new["via"]["source"]["rel"] == "follow_up" and new["via"]["source"]["from"]["ticket_id"] == ticket
    first = pg.zendesk.ticket_comments(new_id)[0]
    assert not first["public"] and "We promised the customer" in first["body"]
    assert new["requester_id"] == pg.zendesk.ticket(ticket)["requester_id"]
    new_ref = Ref("zendesk", str(new_id))
    assert [r.issue for r in app.store.links_for_ticket(new_ref)] == [r.issue for r in app.store.links_for_ticket(ref)]
    moved = app.store.promises_for_ticket(new_ref)
    assert moved and all(p.state in (PromiseState.DUE, PromiseState.OPEN) for p in moved)
    assert pg.zendesk.ticket(ticket)["status"] == "closed"

    cycle(app, clock)  # nothing is created twice
    assert set(pg.zendesk.tickets) - before == {new_id}
    pg.agent_note(new_id, "The fix is live; sorry for the wait.", public=True)
    cycle(app, clock)
    kept = {p.what: p.state for p in app.store.promises_for_ticket(new_ref)}
    assert kept["news when the linked work ships"] is PromiseState.KEPT
