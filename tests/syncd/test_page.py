"""PageWork: one page's transaction, built on a bare store (no sandbox, no engine)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from connectors.base import Rejected
from mappings.planner import Plan, PlanSettings, ticket_group
from syncd.page import PageWork, PollReport
from syncd.records import Event, Issue, Link, Organization, Ref, StateCategory, Ticket
from syncd.store import Store
from syncd.writes import IssueComment, TicketUpdate

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
SETTINGS = PlanSettings(helpdesk="zendesk", status_field="9001")


def ticket(n: int = 1) -> Ticket:
    return Ticket(
        ref=Ref("zendesk", str(n)),
        key=f"#{n}",
        url=f"https://acme.zendesk.com/agent/tickets/{n}",
        subject=f"Export fails {n}",
        status="open",
        updated_at=T0,
        organization=Organization("o1", "Globex"),
    )


def issue(key: str = "ENG-1", uid: str = "u1") -> Issue:
    return Issue(
        ref=Ref("linear", uid),
        key=key,
        url=f"https://linear.app/acme/issue/{key}",
        title="CSV export",
        state=StateCategory.UNSTARTED,
        state_name="Todo",
        updated_at=T0,
    )


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "syncd.db", clock=lambda: T0) as s:
        yield s


def work(store: Store, **kw) -> PageWork:
    return PageWork(store, SETTINGS, "zendesk", **kw)


def note(key: str, n: int = 1, text: str = "a note"):
    ref = Ref("zendesk", str(n))
    return TicketUpdate(note=text).action(key, ref.connector, ref.id, ticket_group(ref))


def test_commit_writes_a_plan_s_links_actions_and_events_and_counts_new_actions(store):
    link = Link(Ref("zendesk", "1"), Ref("linear", "u1"), "comment")
    comment = IssueComment("hi").action("k2", "linear", "u1", "issue:linear:u1")
    plan = Plan(links=[link], actions=[note("k1"), comment], events=[Event("linked", "#1 linked", link.ticket)])
    seen = []
    with work(store, on_queued=seen.append) as w:
        assert w.commit(plan) == 2
        assert w.commit(Plan(actions=plan.actions)) == 0  # the same keys again: nothing new
    assert [r.issue for r in store.links_for_ticket(link.ticket)] == [link.issue]
    assert [r.key for r in store.list_outbox()] == ["k1", "k2"]
    assert [e.kind for e in store.history(link.ticket)] == ["linked"]
    assert [a.key for a in seen] == ["k1", "k2"]


def test_the_page_keeps_its_queued_ticket_writes_by_ticket_for_the_handoff(store):
    with work(store) as w:
        w.commit(Plan(actions=[note("k1", 1), note("k2", 2)]))
        w.commit(Plan(actions=[note("k3", 1, "later"), IssueComment("c").action("k4", "linear", "u1", "g")]))
        writes = w.take_writes()
        assert {ref.id: a.key for ref, a in writes.items()} == {"1": "k3", "2": "k2"}  # the issue write is not kept
        assert w.take_writes() == {}  # handed over once


def test_link_plans_the_link_s_writes_once(store):
    report = PollReport("zendesk")
    with work(store) as w:
        store.put_snapshot(ticket())
        store.put_snapshot(issue())
        assert w.link(ticket(), issue(), "comment", report) == 1
        assert w.link(ticket(), issue(), "comment", report) == 0
        assert Ref("zendesk", "1") in w.writes  # the link note waits for the handoff's stage
    assert report.actions == 2  # the note on the ticket, the ticket shown on the issue
    assert {r.op for r in store.list_outbox()} == {"ticket.update", "issue.attach"}


def test_quarantine_release_and_cursor(store):
    with work(store) as w:
        assert w.quarantine("zendesk", [Rejected("7", "no subject", {"id": 7})]) == 1
        w.set_cursor("zendesk", "c1")
    assert [r.record_id for r in store.list_quarantine()] == ["7"]
    with work(store) as w:
        w.release("zendesk", ["7", "8"])
    assert store.list_quarantine() == [] and store.get_cursor("zendesk") == "c1"


def test_the_page_rolls_back_as_one(store):
    with pytest.raises(RuntimeError):
        with work(store) as w:
            store.put_snapshot(ticket())
            store.put_snapshot(issue())
            w.link(ticket(), issue(), "comment")
            w.quarantine("zendesk", [Rejected("7", "no subject", None)])
            w.set_cursor("zendesk", "c2")
            raise RuntimeError("the page failed half-way")
    assert store.list_outbox() == [] and store.list_quarantine() == []
    assert store.links_for_ticket(Ref("zendesk", "1")) == [] and store.get_cursor("zendesk") is None
    assert w.writes == {}  # nothing queued survives the failed page


def _plans() -> list[Plan]:
    """Plans as a tracker page makes them, with what commit_many must keep apart: a key given
    twice, an empty plan, a link, and a write that is not a ticket update."""
    link = Link(Ref("zendesk", "3"), Ref("linear", "u3"), "comment")
    return [
        Plan(
            actions=[note("k1", 1), note("k2", 2)], events=[Event("issue_state", "u1 moved", None, Ref("linear", "u1"))]
        ),
        Plan(),
        Plan(
            actions=[note("k3", 1, "later"), note("k2", 2, "again")],
            events=[Event("resolved", "#1", Ref("zendesk", "1"))],
        ),
        Plan(
            links=[link],
            actions=[IssueComment("c").action("k4", "linear", "u3", "issue:linear:u3"), note("k5", 3)],
            events=[Event("linked", "#3 linked", link.ticket), Event("issue_state", "u3 moved")],
        ),
    ]


def _committed(store: Store, many: bool) -> tuple:
    seen: list[str] = []

    def on_queued(action) -> None:  # as the engine's: a write that is not a ticket update may write an event
        seen.append(action.key)
        if not isinstance(action.write, TicketUpdate):
            store.add_event(Event("delivered", f"{action.key} found already"))

    with work(store, on_queued=on_queued) as w:
        queued = w.commit_many(_plans()) if many else sum(w.commit(plan) for plan in _plans())
        writes = {ref.id: a.key for ref, a in w.take_writes().items()}
    outbox = [(r.key, r.group, r.payload) for r in store.list_outbox()]
    events = [(e.kind, e.summary, e.ticket, e.issue) for e in store.events_since(0)]
    links = [(r.ticket, r.issue, r.active) for r in store.all_links()]
    return queued, seen, writes, outbox, events, links


def test_commit_many_writes_what_committing_plan_by_plan_writes(tmp_path):
    with Store(tmp_path / "one.db", clock=lambda: T0) as one, Store(tmp_path / "many.db", clock=lambda: T0) as many:
        by_plan, together = _committed(one, many=False), _committed(many, many=True)
    assert together == by_plan
    queued, seen, writes, outbox, events, _ = together
    assert queued == 5 and seen == ["k1", "k2", "k3", "k4", "k5"]
    assert writes == {"1": "k3", "2": "k2", "3": "k5"}
    assert [key for key, _, _ in outbox] == ["k1", "k2", "k3", "k4", "k5"]
    # The callback's event comes after the events of the plans before its write's plan, and before its own.
    assert [kind for kind, *_ in events] == ["issue_state", "resolved", "delivered", "linked", "issue_state"]


def test_commit_many_runs_one_statement_per_kind_of_row(store):
    ran: list[str] = []
    run, run_many = store._run, store._run_many
    store._run = lambda sql, params: ran.append(" ".join(sql.split()[:3:2])) or run(sql, params)
    store._run_many = lambda sql, rows: ran.append(" ".join(sql.split()[:3:2])) or run_many(sql, rows)
    plans = [Plan(actions=[note(f"k{n}", n)], events=[Event("issue_state", f"{n} moved")]) for n in range(50)]
    with work(store) as w:
        ran.clear()
        assert w.commit_many(plans) == 50
        assert w.commit_many([]) == 0
    # The new actions go in with one INSERT that says which it inserted (Store.enqueue_many).
    assert sorted(ran) == ["COMMIT", "INSERT events", "INSERT outbox"], ran
    assert len(store.events_since(0)) == 50
