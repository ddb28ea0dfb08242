"""Stage planning, pure: observations from records, one event and one ticket write per stage change."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mappings import acceptance as acc
from mappings.routes import Route
from mappings.stage_plan import (
    StageDisplay,
    follow_up_stage,
    issue_view,
    observe,
    plan_stage,
    reopened_at,
    told_customer_at,
)
from mappings.stages import StageSpan
from syncd.records import Comment, Customer, Issue, Organization, Ref, Stage, StateCategory, Ticket
from syncd.writes import TICKET_UPDATE, TicketUpdate

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
DISPLAY = StageDisplay(field="900", tag_prefix="syncd_stage_")
ROUTE = Route(
    name="all",
    tracker="linear",
    team="ENG",
    escalate_tag="escalated",
    criteria=(acc.OrganizationKnown(label="the customer's organisation"),),
)


def ticket(**kw) -> Ticket:
    base = dict(
        ref=Ref("zendesk", "1"),
        key="#1",
        url="u",
        subject="s",
        status="open",
        updated_at=T0,
        requester=Customer("c1", "Cara"),
        tags=("escalated",),
        organization=Organization("o1", "Fjord"),
    )
    return Ticket(**{**base, **kw})


def issue(state=StateCategory.TRIAGE, name="Triage", at=T0, assignee="ada") -> Issue:
    return Issue(Ref("linear", "i1"), "ENG-1", "u", "t", state, name, at, assignee=assignee)


def comment(at, *, public=True, author="agent7", markers=()) -> Comment:
    return Comment("c", "hello", public, author, at, markers)


def stage_of(t: Ticket, issues=(), told=None, history=(), now=T0, reopened=None):
    views = [issue_view(i, "linear", ROUTE, None)[0] for i in issues]
    return follow_up_stage(observe(t, ROUTE, views, now=now, told_at=told, reopened=reopened), ROUTE, history)


# -- observing ---------------------------------------------------------------------------------------


def test_flag_and_criteria_come_from_the_route():
    assert stage_of(ticket(tags=())).stage is None
    assert stage_of(ticket()).stage is Stage.NEW
    assert stage_of(ticket(organization=None)).stage is Stage.NEEDS_CONTEXT
    no_criteria = Route(name="x", tracker="linear", team="ENG", escalate_tag="escalated")
    obs = observe(ticket(organization=None), no_criteria, [], now=T0, told_at=None)
    assert obs.flagged and obs.criteria_met is None  # the route names no criteria: not judged


def test_linked_issues_walk_assigned_waiting_resolved_follow_up():
    t = ticket()
    assert stage_of(t, [issue()]).stage is Stage.ASSIGNED
    assert stage_of(t, [issue(StateCategory.STARTED, "In Progress")]).stage is Stage.WAITING
    done = issue(StateCategory.COMPLETED, "Done", at=T0 + timedelta(hours=2))
    assert stage_of(t, [done]).stage is Stage.RESOLVED
    assert stage_of(t, [done], told=T0 + timedelta(hours=1)).stage is Stage.RESOLVED  # told before it was done
    assert stage_of(t, [done], told=T0 + timedelta(hours=3)).stage is Stage.FOLLOW_UP


def test_an_issue_keeps_the_time_it_entered_its_stage_while_it_changes_otherwise():
    first = issue(StateCategory.COMPLETED, "Done", at=T0)
    _, mark = issue_view(first, "linear", ROUTE, None)
    assert mark == (Stage.RESOLVED, T0)
    retitled = issue(StateCategory.COMPLETED, "Done", at=T0 + timedelta(hours=5))
    view, again = issue_view(retitled, "linear", ROUTE, mark)
    assert view.since == T0 and again == mark
    reopened = issue(StateCategory.STARTED, "In Progress", at=T0 + timedelta(hours=6))
    assert issue_view(reopened, "linear", ROUTE, mark)[1] == (Stage.WAITING, T0 + timedelta(hours=6))


def test_told_customer_counts_public_agent_replies_and_solves_only():
    t = ticket()
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    assert told_customer_at(t, t, [comment(t1, public=False)], None) is None
    assert told_customer_at(t, t, [comment(t1, author="c1")], None) is None  # the customer's own reply
    assert told_customer_at(t, t, [comment(t1, markers=("k",))], None) is None  # syncd's own write
    assert told_customer_at(t, t, [comment(t1)], None) == t1
    assert told_customer_at(t, t, [comment(t1)], t2) == t2  # remembered later time kept
    solved = ticket(status="solved", updated_at=t2)
    assert told_customer_at(solved, t, [], None) == t2
    assert told_customer_at(solved, solved, [], None) is None  # still solved: not a new solve


# -- planning ----------------------------------------------------------------------------------------


def test_a_stage_change_plans_one_event_and_one_write_that_swaps_the_tag():
    result = stage_of(ticket(), [issue()], history=[StageSpan(Stage.NEW, T0 - timedelta(hours=1))])
    plan = plan_stage(ticket(), result, DISPLAY)
    (action,) = plan.actions
    assert action.op == TICKET_UPDATE and action.target == "1"
    assert action.write.payload()["fields"] == {"900": "assigned"}
    assert action.write.payload()["add_tags"] == ["syncd_stage_assigned"]
    assert set(action.write.payload()["remove_tags"]) == {f"syncd_stage_{s.value}" for s in Stage} - {
        "syncd_stage_assigned"
    } | {"syncd_stage_handoff_failed"}  # and the one a refused handoff shows
    (event,) = plan.events
    assert event.kind == "stage" and event.detail["from"] == "new" and event.detail["stage"] == "assigned"
    assert "New → Assigned" in event.summary


def test_the_key_follows_ticket_stage_and_since():
    history = [StageSpan(Stage.NEW, T0 - timedelta(hours=1))]
    a = plan_stage(ticket(), stage_of(ticket(), [issue()], history=history, now=T0), DISPLAY).actions[0]
    again = plan_stage(ticket(), stage_of(ticket(), [issue()], history=history, now=T0), DISPLAY).actions[0]
    later = plan_stage(
        ticket(), stage_of(ticket(), [issue()], history=history, now=T0 + timedelta(1)), DISPLAY
    ).actions[0]
    other = plan_stage(
        ticket(ref=Ref("zendesk", "2")),
        stage_of(ticket(ref=Ref("zendesk", "2")), [issue()], history=history, now=T0),
        DISPLAY,
    ).actions[0]
    assert a.key == again.key
    assert len({a.key, later.key, other.key}) == 3


def test_no_change_plans_nothing():
    first = stage_of(ticket(), [issue()])
    same = stage_of(ticket(), [issue()], history=first.history, now=T0 + timedelta(hours=1))
    assert not same.changed and not plan_stage(ticket(), same, DISPLAY)


def test_display_by_field_only_or_tag_only():
    result = stage_of(ticket())
    field_only = plan_stage(ticket(), result, StageDisplay(field="900")).actions[0].write.payload()
    assert field_only["fields"] == {"900": "new"} and set(field_only) == {"fields", "marker"}
    tag_only = plan_stage(ticket(), result, StageDisplay(tag_prefix="fu_")).actions[0].write.payload()
    assert tag_only["add_tags"] == ["fu_new"] and "fields" not in tag_only and "fu_new" not in tag_only["remove_tags"]


def test_tickets_entering_the_same_stage_together_share_a_marker_for_one_bulk_write():
    done = issue(StateCategory.COMPLETED, "Done", at=T0 + timedelta(hours=2))
    history = [StageSpan(Stage.WAITING, T0)]
    one = plan_stage(ticket(), stage_of(ticket(), [done], history=history), DISPLAY).actions[0]
    t2 = ticket(ref=Ref("zendesk", "2"), key="#2")
    two = plan_stage(t2, stage_of(t2, [done], history=history), DISPLAY).actions[0]
    assert one.key != two.key and one.write.payload() == two.write.payload()  # equal payloads: delivery bulks them


def test_merge_folds_the_stage_into_another_ticket_write():
    link_write = {
        "note": "Linked to ENG-1",
        "add_tags": ["syncd_linked"],
        "fields": {"800": "ENG-1: Triage"},
        "marker": "m",
    }
    stage = plan_stage(ticket(), stage_of(ticket(), [issue()]), DISPLAY).actions[0].write.payload()
    merged = merge_stage(link_write, stage)
    assert merged["note"] == "Linked to ENG-1" and merged["marker"] == "m"
    assert merged["fields"] == {"800": "ENG-1: Triage", "900": "assigned"}
    assert merged["add_tags"] == ["syncd_linked", "syncd_stage_assigned"]
    assert "syncd_stage_new" in merged["remove_tags"] and "syncd_stage_assigned" not in merged["remove_tags"]
    unlink = merge_stage({"note": "n", "remove_tags": ["syncd_linked"]}, stage)
    assert "syncd_linked" in unlink["remove_tags"] and unlink["add_tags"] == ["syncd_stage_assigned"]
    assert "fields" not in merge_stage({"note": "n"}, {"add_tags": ["x"], "remove_tags": []})


def test_a_reopen_after_follow_up_is_rework_back_to_new():
    t1, t2, t3 = (T0 + timedelta(hours=h) for h in (1, 2, 3))
    solved, reopened = ticket(status="solved", updated_at=t2), ticket(status="open", updated_at=t3)
    assert reopened_at(reopened, solved, None) == t3
    assert reopened_at(solved, reopened, t3) == t3  # solving again keeps the last reopen
    assert reopened_at(reopened, ticket(status="pending"), None) is None  # pending → open is no reopen
    done = issue(StateCategory.COMPLETED, "Done", at=T0)
    follow_up = stage_of(solved, [done], told=t1)
    assert follow_up.stage is Stage.FOLLOW_UP
    again = stage_of(reopened, [done], told=t1, history=follow_up.history, reopened=t3)
    assert again.stage is Stage.NEW and again.changed and again.rework_at == t3
    plan = plan_stage(reopened, again, DISPLAY)
    assert plan.actions[0].write.payload()["add_tags"] == ["syncd_stage_new"]
    assert "Follow-up → New" in plan.events[0].summary


def merge_stage(payload: dict, stage: dict) -> dict:
    """The stage folded into a ticket write, payload in and payload out."""
    return TicketUpdate.from_payload(payload).with_stage(TicketUpdate.from_payload(stage)).payload()


def test_a_refused_handoff_is_shown_in_the_field_and_tag_and_the_next_stage_clears_it():
    failed = DISPLAY.write(Stage.NEW, failed=True)
    assert failed.fields == {"900": "handoff_failed"} and failed.add_tags == ("syncd_stage_handoff_failed",)
    assert "syncd_stage_new" in failed.remove_tags and "syncd_stage_handoff_failed" not in failed.remove_tags
    assert "syncd_stage_handoff_failed" in DISPLAY.write(Stage.NEW).remove_tags
