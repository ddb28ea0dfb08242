"""The handoff (Handoff), built from its ports and the shipped example mappings: no engine, no sandbox.

Each test opens a :class:`~syncd.page.PageWork` on a real store, as the
engine does for a page, stores the ticket's snapshot, and hands the ticket to
``Handoff.update``; the clock is the test's. The tracker is named
``linear`` because the example routes send follow-ups to the tracker
connector of that name; its kind is the in-memory double's.
"""

from __future__ import annotations

import dataclasses

import pytest

from mappings.files import EXAMPLES, load_mappings
from mappings.planner import PlanSettings
from syncd.app import tracker_kinds
from syncd.handoff import Handoff
from syncd.page import PageWork, Ports
from syncd.records import Comment, Customer, Issue, Organization, PromiseState, Ref, StateCategory, Ticket
from syncd.store import Store
from syncd.writes import ISSUE_CREATE, ISSUE_UPSERT, TICKET_UPDATE

from .doubles import Clock, MemoryHelpdesk, MemoryTracker

MAPPINGS = load_mappings(EXAMPLES, kinds=tracker_kinds())  # the example set an admin starts from
SEVERITY = "36000000010"  # the examples' severity field (an acceptance criterion)
COMPLETE = (
    "The export cannot finish. Steps to reproduce: 1. open Reports 2. export CSV. "
    "Expected: a file. Impact: every user of the account is blocked."
)


class HandoffRig:
    def __init__(self, tmp_path):
        self.clock = Clock()
        self.store = Store(tmp_path / "syncd.db", clock=self.clock)
        self.settings = PlanSettings(helpdesk="desk", helpdesk_name="Desk")
        self.tracker = MemoryTracker("linear", clock=self.clock)
        ports = Ports(
            self.store, self.clock, {"linear": self.tracker}, MemoryHelpdesk(clock=self.clock), self.settings, self.work
        )
        self.handoff = Handoff(ports, MAPPINGS)

    def work(self) -> PageWork:
        return PageWork(self.store, self.settings, "desk")

    def ticket(self, n: int = 1, *, complete: bool, **kw) -> Ticket:
        extra = (
            dict(organization=Organization("o1", "Globex"), fields={SEVERITY: "sev2"}, description=COMPLETE)
            if complete
            else {}
        )
        return Ticket(
            ref=Ref("desk", str(n)),
            key=f"#{n}",
            url=f"https://desk.invalid/tickets/{n}",
            subject="CSV export fails",
            status="open",
            updated_at=self.clock(),
            created_at=self.clock(),
            requester=Customer("c1", "Cara"),
            tags=("escalated",),
            **{**extra, **kw},
        )

    def page(self, ticket: Ticket, comments: list[Comment] | None = None, *, link: Issue | None = None) -> int:
        """A helpdesk page with this ticket (and, with ``link``, the link it makes); returns the writes queued."""
        with self.work() as work:
            previous = self.store.get_snapshot(ticket.ref)
            self.store.put_snapshot(ticket)
            if link is not None:
                self.store.put_snapshot(link)
                work.link(ticket, link, "comment")
            return self.handoff.update(
                work, [ticket.ref], {ticket.ref: previous} if previous else {}, {ticket.ref: comments or []}
            )

    def issue_page(self, issue: Issue) -> int:
        """A tracker page moving ``issue``: the handoff of its linked tickets (no comments, no previous)."""
        with self.work() as work:
            self.store.put_snapshot(issue)
            tickets = [row.ticket for row in self.store.links_for_issue(issue.ref)]
            return self.handoff.update(work, tickets)

    def notes(self, text: str) -> list[str]:
        return [
            a.payload["note"]
            for a in self.store.list_outbox(limit=1000)
            if a.op == TICKET_UPDATE and text in (a.payload.get("note") or "")
        ]

    def linked(self) -> tuple[Ticket, Issue]:
        """A complete flagged ticket handed over by a link to ENG-1, made while syncd watched."""
        issue = self.tracker.put(1)
        ticket = self.ticket(complete=True)
        self.page(ticket, link=issue)
        return ticket, issue


@pytest.fixture
def handoff(tmp_path):
    h = HandoffRig(tmp_path)
    yield h
    h.store.close()


def test_a_flagged_ticket_missing_its_acceptance_criteria_gets_the_needs_context_note_once(handoff):
    ticket = handoff.ticket(complete=False)
    handoff.page(ticket)
    handoff.clock.advance()
    handoff.page(dataclasses.replace(ticket, subject="CSV export still fails", updated_at=handoff.clock()))

    [note] = handoff.notes("please add")
    assert "steps to reproduce" in note and "the customer's organisation" in note
    assert not [a for a in handoff.store.list_outbox() if a.op == ISSUE_CREATE]


def test_a_complete_flagged_ticket_plans_one_issue_creation(handoff):
    ticket = handoff.ticket(complete=True)
    handoff.page(ticket)
    handoff.clock.advance()
    handoff.page(dataclasses.replace(ticket, subject="CSV export still fails", updated_at=handoff.clock()))

    [create] = [a for a in handoff.store.list_outbox() if a.op == ISSUE_CREATE]
    assert (create.connector, create.target, create.payload["ticket"]) == ("linear", "ENG", "1")
    assert handoff.notes("please add") == []


def test_a_resolved_linked_issue_makes_the_promise_due_with_one_note(handoff):
    ticket, issue = handoff.linked()

    def news() -> PromiseState:
        [promise] = [p for p in handoff.store.promises_for_ticket(ticket.ref) if p.trigger == "issue_resolved"]
        return promise.state

    assert news() is PromiseState.OPEN
    handoff.clock.advance(hours=3)

    done = handoff.tracker.put(1, StateCategory.COMPLETED, "Done")
    handoff.issue_page(done)
    handoff.clock.advance()
    handoff.issue_page(dataclasses.replace(done, title="Export fixed", updated_at=handoff.clock()))

    assert news() is PromiseState.DUE
    [note] = handoff.notes("We promised the customer")
    assert "ENG-1 is Done" in note


def test_the_clock_past_a_deadline_breaks_the_promise_once(handoff):
    ticket, _ = handoff.linked()
    [promise] = [p for p in handoff.store.promises_for_ticket(ticket.ref) if p.due_at is not None]
    assert promise.due_at > handoff.clock()

    handoff.clock.now = promise.due_at
    handoff.handoff.tick()
    assert handoff.store.get_promise(promise.id).state is PromiseState.OPEN  # due now, not yet past
    handoff.clock.advance(minutes=1)
    handoff.handoff.tick()
    handoff.clock.advance(minutes=10)
    handoff.handoff.tick()

    assert handoff.store.get_promise(promise.id).state is PromiseState.BROKEN
    [note] = handoff.notes("Overdue: the customer was promised")
    broken = [a for a in handoff.store.list_outbox(limit=1000) if MAPPINGS.broken_tag in a.payload.get("add_tags", ())]
    assert len(broken) == 1


def test_a_demand_comment_is_built_and_queued_again_only_when_its_inputs_change(handoff, monkeypatch):
    import syncd.handoff as module

    built: list[str] = []
    real = module.demand_body

    def counted(*args, **kw):
        built.append(args[0].key)
        return real(*args, **kw)

    monkeypatch.setattr(module, "demand_body", counted)

    def demand_writes() -> list:
        return [a for a in handoff.store.list_outbox(limit=1000) if a.op == ISSUE_UPSERT]

    ticket, issue = handoff.linked()
    [first] = demand_writes()
    assert built == ["ENG-1"] and "Globex" in first.payload["body"]

    # What the text does not read changes (the ticket's subject, the issue's state): not built, not queued.
    handoff.clock.advance()
    ticket = dataclasses.replace(ticket, subject="CSV export still fails", updated_at=handoff.clock())
    handoff.page(ticket)
    handoff.clock.advance()
    handoff.issue_page(handoff.tracker.put(1, StateCategory.STARTED, "In Progress"))
    assert built == ["ENG-1"] and len(demand_writes()) == 1

    # The customer's organisation changes: built again, and the new text queued once, at the next version.
    handoff.clock.advance()
    ticket = dataclasses.replace(ticket, organization=Organization("o2", "Initech"), updated_at=handoff.clock())
    handoff.page(ticket)
    handoff.clock.advance()
    handoff.page(dataclasses.replace(ticket, subject="again", updated_at=handoff.clock()))
    assert built == ["ENG-1", "ENG-1"]
    [_, second] = demand_writes()
    assert "Initech" in second.payload["body"] and "Globex" not in second.payload["body"]
    assert handoff.store.get_meta(issue.ref)["demand_version"] == 2


def test_a_demand_text_stored_by_another_path_is_built_again_and_written_only_if_it_differs(handoff, monkeypatch):
    ticket, issue = handoff.linked()
    meta = handoff.store.get_meta(issue.ref)

    def demand_writes() -> list:
        return [a for a in handoff.store.list_outbox(limit=1000) if a.op == ISSUE_UPSERT]

    # A store from before the digest (no demand_inputs): built again, the same text, nothing queued.
    handoff.store.set_meta(issue.ref, demand_inputs=None)
    handoff.clock.advance()
    ticket = dataclasses.replace(ticket, subject="one", updated_at=handoff.clock())
    handoff.page(ticket)
    assert len(demand_writes()) == 1
    assert handoff.store.get_meta(issue.ref)["demand_inputs"] == meta["demand_inputs"]

    # Another text set apart from the page (as syncd.privacy does): the inputs are the same, the text
    # differs from what they give, so it is written again.
    handoff.store.set_meta(issue.ref, demand_body="something else", demand_version=5)
    handoff.clock.advance()
    handoff.page(dataclasses.replace(ticket, subject="two", updated_at=handoff.clock()))
    [_, again] = demand_writes()
    assert again.payload["body"] == meta["demand_body"]
    assert handoff.store.get_meta(issue.ref)["demand_version"] == 6


def test_the_tickets_a_page_hands_over_are_not_read_back_from_the_store(handoff, monkeypatch):
    ticket, issue = handoff.linked()
    handoff.clock.advance()
    ticket = dataclasses.replace(ticket, organization=Organization("o2", "Initech"), updated_at=handoff.clock())
    asked: list = []
    read = handoff.store.get_snapshots

    def watched(refs):
        refs = list(refs)
        asked.extend(refs)
        return read(refs)

    monkeypatch.setattr(handoff.store, "get_snapshots", watched)
    with handoff.work() as work:
        previous = handoff.store.get_snapshot(ticket.ref)
        handoff.store.put_snapshot(ticket)
        handoff.handoff.update(work, [ticket.ref], {ticket.ref: previous}, {ticket.ref: []}, {ticket.ref: ticket})
    assert ticket.ref not in asked and issue.ref in asked
    [_, demand] = [a for a in handoff.store.list_outbox(limit=1000) if a.op == ISSUE_UPSERT]
    assert "Initech" in demand.payload["body"]
