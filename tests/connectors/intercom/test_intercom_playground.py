"""The sandbox's story world with Intercom as the helpdesk: ``Playground(helpdesk="intercom")``.

The seeded desk (IntercomWorld: the story's tickets, contacts, companies and
admins), the Linear fake, the shipped example mappings fitted to Intercom's
attribute names as ``syncd demo`` fits them, and the people acting through
Intercom's API (IntercomWorld's acts). Links by the link attribute and by a
pasted URL, the status attribute, an escalation through every stage, and
promises due, kept and broken.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from connectors.base import find_markers
from connectors.intercom.connector import html_text
from syncd.cli import main
from syncd.demo import fit_example_fields
from syncd.records import PromiseState, Ref
from syncd.sandbox.harness import Playground
from syncd.sandbox.runner import build_sandbox
from syncd.sandbox.seed import customer_email
from tests.e2e.handoff_support import MondayClock, copy_examples

pytestmark = [pytest.mark.e2e, pytest.mark.time_sensitive]  # the machine's clock at the edges (tests/conftest.py)


@pytest.fixture
def clock():
    return MondayClock()


@pytest.fixture
def pg(tmp_path, clock):
    sandbox = build_sandbox(clock=clock, trackers=("linear",), helpdesk="intercom")
    mappings = copy_examples(tmp_path)
    with Playground(
        tmp_path / "work", sandbox=sandbox, trackers=("linear",), mappings=mappings, helpdesk="intercom"
    ) as playground:
        assert playground.seed is not None
        fitted = fit_example_fields(mappings, playground.seed)
        assert set(fitted.values()) == {"Severity", "Follow-up stage", "Handoff: still missing"}
        yield playground


@pytest.fixture
def app(pg, clock):
    app = pg.app(clock=clock)
    assert app.engine.cycle().ok  # the first sync of the seeded desk
    yield app
    app.close()


def cycle(app, clock) -> None:
    clock.advance()
    report = app.engine.cycle()
    assert report.ok, report.summary()


def syncd_notes(pg, ticket: str) -> list[str]:
    return [html_text(p["body"]) for p in pg.intercom.notes(ticket) if find_markers(p["body"])]


def test_the_playground_serves_intercom_seeded_and_syncd_check_agrees(pg):
    assert pg.helpdesk == "intercom" and pg.desk.kind == "intercom"
    text = pg.config_path.read_text(encoding="utf-8")
    for line in ('status_attribute = "Linked issue status"', 'stage_attribute = "Follow-up stage"'):
        assert line in text
    result = CliRunner().invoke(main, ["check"], env=pg.cli_env())
    assert result.exit_code == 0, result.output
    assert "intercom (intercom): ok" in result.output


def test_seeded_links_and_a_pasted_url_link_and_the_status_attribute_follows_the_issue(pg, app, clock):
    seed, desk, linear = pg.seed, pg.desk, pg.tracker_in_role("linked")
    csv = seed.tickets["csv"]  # its "Linked issue" attribute names ENG-2
    assert [r.issue.id for r in app.store.links_for_ticket(Ref("intercom", csv))] == [seed.issues["csv"]]
    assert desk.field(csv, seed.linked_issue_status_field_id).startswith(f"{seed.identifiers['csv']}: ")
    assert any(f"Linked to {seed.identifiers['csv']}" in n for n in syncd_notes(pg, csv))

    # An agent pastes the Linear URL of an issue into a note: linked, its status shown in the attribute.
    search, key = seed.tickets["search"], seed.identifiers["search"]
    desk.agent_note(search, f"Engineering tracks this as {linear.view(key).url}")
    cycle(app, clock)
    links = app.store.links_for_ticket(Ref("intercom", search))
    assert [(r.issue.id, r.origin) for r in links] == [(seed.issues["search"], "comment")]

    # The customer is told and the ticket set to pending; the engineer ships: the attribute says
    # so, and the ticket is reopened with a note for the agent.
    desk.agent_note(search, "Our engineers are on it.", public=True)
    desk.agent_set_status(search, "pending")
    cycle(app, clock)
    linear.move(key, "Done")
    cycle(app, clock)
    assert desk.field(search, seed.linked_issue_status_field_id).startswith(f"{key}: ")
    assert "Done" in desk.field(search, seed.linked_issue_status_field_id)
    view = desk.view(search)
    assert view.status == "In progress" and "syncd_stage_resolved" in view.tags
    assert "We promised the customer news when the linked work ships" in syncd_notes(pg, search)[-1]

    # Nothing new: an idle cycle costs Intercom one search request.
    cycle(app, clock)
    pg.intercom.reset_counts()
    cycle(app, clock)
    assert dict(pg.intercom.counts) == {"POST /tickets/search": 1}


def open_flagged(pg) -> str:
    ticket = pg.desk.customer_opens(
        "Route planner drops the last stop",
        "When a route has more than 20 stops, the last stop is not shown.",
        customer=customer_email("hannah"),
        agent="Priya Raman",
        organization="Northwind Logistics",
    )
    pg.desk.agent_set_tags(ticket, [pg.seed.escalation_tag])
    return ticket


def test_an_escalation_needs_context_then_is_handed_over_with_promises(pg, app, clock):
    seed, desk = pg.seed, pg.desk
    ticket = open_flagged(pg)
    cycle(app, clock)
    assert desk.field(ticket, seed.stage_field_id) == "needs_context"
    assert "syncd_stage_needs_context" in desk.view(ticket).tags
    missing = desk.field(ticket, seed.missing_field_id)
    assert missing is not None and missing.count("- ") == 4 and "&#" not in missing

    desk.agent_note(
        ticket,
        "Steps: plan a route with 21 stops.\nExpected: all 21 stops are shown.\n"
        "Impact: every dispatcher at Northwind is affected.",
    )
    desk.agent_set_field(ticket, seed.severity_field_id, "sev2")
    cycle(app, clock)
    [link] = app.store.links_for_ticket(Ref("intercom", ticket))
    assert link.origin == "escalation"
    issue = pg.tracker_in_role("linked").view(link.issue.id)
    assert "sev2" in issue.description and "Northwind" in issue.description
    assert desk.field(ticket, seed.stage_field_id) == "assigned"
    assert desk.field(ticket, seed.missing_field_id) is None
    promises = app.store.promises_for_ticket(Ref("intercom", ticket))
    assert sorted(p.what for p in promises) == ["an update within 2 business days", "news when the linked work ships"]

    # The work ships: the promises fall due; a public reply keeps them.
    pg.tracker_in_role("linked").move(issue.key, "Done")
    cycle(app, clock)
    assert desk.field(ticket, seed.stage_field_id) == "resolved"
    ref = Ref("intercom", ticket)
    assert {p.state for p in app.store.promises_for_ticket(ref)} == {PromiseState.DUE}
    desk.agent_note(ticket, "The fix is live.", public=True)
    cycle(app, clock)
    assert {p.state for p in app.store.promises_for_ticket(ref)} == {PromiseState.KEPT}
    assert desk.field(ticket, seed.stage_field_id) == "follow_up"


def test_a_promise_nobody_keeps_is_broken_by_the_clock_once(pg, app, clock):
    seed, desk = pg.seed, pg.desk
    ticket = seed.tickets["search"]
    key = seed.identifiers["search"]
    desk.agent_note(ticket, f"Known problem: {key}")
    cycle(app, clock)
    ref = Ref("intercom", ticket)
    [update] = [p for p in app.store.promises_for_ticket(ref) if p.due_at is not None]
    clock.now = update.due_at + timedelta(minutes=1)
    cycle(app, clock)
    assert app.store.get_promise(update.id).state is PromiseState.BROKEN
    assert "syncd_promise_broken" in desk.view(ticket).tags
    cycle(app, clock)
    assert len([n for n in syncd_notes(pg, ticket) if "Overdue" in n]) == 1
