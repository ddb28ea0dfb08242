"""The words of notes and the status field: the admin's show text, what changed, which tracker."""

from __future__ import annotations

from datetime import datetime, timezone

from mappings.links import shared_key_trackers
from mappings.planner import (
    LinkedTicket,
    PlanSettings,
    plan_gone_ref,
    plan_issue_update,
    plan_link,
    status_field_value,
)
from mappings.routes import Mappings, Route, builtin_templates
from mappings.stages import StageSpan, StateMap, StateRule
from mappings.templates import Template
from syncd.records import Issue, Link, Ref, Stage, StateCategory, Ticket

AT = datetime(2026, 5, 4, 9, 0, tzinfo=timezone.utc)


def ticket(tid: str = "4", tags: tuple[str, ...] = ()) -> Ticket:
    return Ticket(Ref("desk", tid), f"#{tid}", f"https://desk/{tid}", "Export fails", "open", AT, tags=tags)


def issue(tracker: str = "lin", key: str = "ENG-6", **kw) -> Issue:
    base = dict(
        ref=Ref(tracker, key.lower()),
        key=key,
        url=f"https://t/{key}",
        title="Export",
        state=StateCategory.COMPLETED,
        state_name="Done",
        updated_at=AT,
        assignee="Ravi Patel",
        native={"type": "completed"},
    )
    base.update(kw)
    return Issue(**base)  # type: ignore[arg-type]


STATES = StateMap(
    "lin",
    "linear-kind",
    (
        StateRule((("type", "completed"),), Stage.RESOLVED, Template("show", "Fixed: {state_name}")),
        StateRule((("type", "started"),), Stage.WAITING, Template("show", "{issue_key} in progress <{owner}>")),
    ),
)
MAPPINGS = Mappings(routes=(Route("product", "lin", "ENG", states=STATES),))
SETTINGS = PlanSettings(
    helpdesk="desk", status_field="9", mappings=MAPPINGS, tracker_kinds={"lin": "linear-kind", "jr": "jira-kind"}
)


def field(plan) -> str:
    return plan.actions[0].write.payload()["fields"]["9"]


def test_the_status_field_shows_the_state_maps_show_text():
    done = issue()
    plan = plan_link(Link(ticket().ref, done.ref, "comment"), ticket(), done, [done], SETTINGS)
    assert field(plan) == "ENG-6: Fixed: Done"  # not "ENG-6: Done (Ravi Patel)"


def test_a_show_text_naming_the_key_is_not_prefixed_and_its_values_are_escaped():
    started = issue(state=StateCategory.STARTED, state_name="Doing", native={"type": "started"}, assignee="<b>Li</b>")
    text = SETTINGS.shown_state(ticket(), started)
    assert text is not None and text.startswith("ENG-6 in progress <") and "Li" in text
    assert status_field_value([started], {started.ref: text}) == text


def test_without_a_matching_rule_or_for_another_trackers_issue_the_state_name_and_owner():
    backlog = issue(state=StateCategory.BACKLOG, state_name="Backlog", native={"type": "backlog"})
    other = issue("jr", "PLAT-2", state_name="Done", native={"type": "completed"})
    assert SETTINGS.shown_state(ticket(), backlog) is None
    assert SETTINGS.shown_state(ticket(), other) is None  # the map is for another tracker kind
    plan = plan_link(Link(ticket().ref, backlog.ref, "comment"), ticket(), backlog, [backlog, other], SETTINGS)
    assert field(plan) == "ENG-6: Backlog (Ravi Patel); PLAT-2: Done (Ravi Patel)"


def test_without_mapping_files_the_field_is_as_before():
    plain = PlanSettings(helpdesk="desk", status_field="9")
    done = issue()
    plan = plan_link(Link(ticket().ref, done.ref, "comment"), ticket(), done, [done], plain)
    assert field(plan) == "ENG-6: Done (Ravi Patel)"


def test_an_owner_change_alone_is_said_as_such():
    """A GitHub-like tracker: assigning someone starts the work, the state's name stays."""
    before = issue("gh", "o/r#5", state=StateCategory.UNSTARTED, state_name="Open (reopened)", assignee=None)
    after = issue("gh", "o/r#5", state=StateCategory.STARTED, state_name="Open (reopened)", assignee="Ada")
    plan = plan_issue_update(after, before, [LinkedTicket(ticket(), (after,))], PlanSettings(helpdesk="desk"))
    note = plan.actions[0].write.payload()["note"]
    assert "moved from" not in note
    assert note.startswith("o/r#5 (Open (reopened)) is now with Ada (was: unassigned).")
    assert plan.events[0].summary == "o/r#5 (Open (reopened)) is now with Ada"


def test_a_category_change_without_new_owner_or_name_writes_no_note():
    before = issue("gh", "o/r#5", state=StateCategory.UNSTARTED, state_name="Open", assignee="Ada")
    after = issue("gh", "o/r#5", state=StateCategory.STARTED, state_name="Open", assignee="Ada")
    plan = plan_issue_update(after, before, [LinkedTicket(ticket(), (after,))], PlanSettings(helpdesk="desk"))
    assert all("note" not in a.payload for a in plan.actions)


def test_a_real_state_change_still_says_from_and_to():
    before = issue(state=StateCategory.STARTED, state_name="In Progress")
    after = issue(state=StateCategory.STARTED, state_name="In Review")
    plan = plan_issue_update(after, before, [LinkedTicket(ticket(), (after,))], PlanSettings(helpdesk="desk"))
    assert plan.actions[0].write.payload()["note"].startswith("ENG-6 moved from In Progress to In Review")


def test_trackers_that_could_share_a_key():
    assert shared_key_trackers({"lin": frozenset({"ENG"}), "jr": frozenset({"ENG", "OPS"})}) == {"lin", "jr"}
    assert shared_key_trackers({"lin": frozenset({"ENG"}), "jr": frozenset({"PLAT"})}) == frozenset()
    # Every team followed: any key could be the other's too; GitHub-like keys never are.
    assert shared_key_trackers({"lin": None, "jr": frozenset({"PLAT"}), "gh": frozenset()}) == {"lin", "jr"}
    assert shared_key_trackers({"lin": None}) == frozenset()


def test_a_note_names_the_tracker_where_keys_could_be_shared():
    settings = PlanSettings(helpdesk="desk", qualified={"jr": "Jira", "lin": "Linear"})
    done = issue("jr", "ENG-89")
    before = issue("jr", "ENG-89", state=StateCategory.STARTED, state_name="In Progress")
    waiting = issue("lin", "ENG-90", state=StateCategory.STARTED, state_name="Doing")
    plan = plan_issue_update(done, before, [LinkedTicket(ticket(), (done, waiting))], settings)
    note = plan.actions[0].write.payload()["note"]
    assert note.startswith("ENG-89 in Jira is Done. Still waiting on:\n- ENG-90 in Linear: Doing")
    gone = plan_gone_ref(ticket(), "jr", "ENG-91", "ENG-91", settings).actions[0].write.payload()["note"]
    assert gone.startswith("ENG-91 in Jira is deleted")


def test_the_routes_templates_write_the_link_note():
    custom = Route(
        "product",
        "lin",
        "ENG",
        templates={**builtin_templates(), "linked": Template("linked", "Now linked: {issue_key}")},
    )
    settings = PlanSettings(helpdesk="desk", mappings=Mappings(routes=(custom,)))
    done = issue()
    plan = plan_link(Link(ticket().ref, done.ref, "comment"), ticket(), done, [done], settings)
    assert plan.actions[0].write.payload()["note"] == "Now linked: ENG-6"


def test_the_promise_due_note_names_the_tracker_too():
    from mappings.handoff_plan import plan_promise_due
    from mappings.promises import new_promise

    settings = PlanSettings(helpdesk="desk", qualified={"jr": "Jira"})
    done = issue("jr", "ENG-89")
    promise = new_promise(ticket().ref, "an update", AT, origin="cli", due_at=AT)
    route = Route("product", "jr", "ENG")
    note = plan_promise_due(ticket(), [done], [promise], route, key_of=settings.issue_key)
    assert note.startswith("ENG-89 in Jira is Done:\n- ENG-89 in Jira: Done")


def test_the_review_gives_times_in_one_format_and_a_due_promise_in_its_routes_zone():
    from mappings.calendar import BusinessCalendar
    from mappings.promises import PromiseRule, new_promise, on_issue_resolved
    from mappings.review import FollowUpRecord, build_review, stamp, to_table

    berlin = BusinessCalendar("Europe/Berlin")
    assert stamp(AT) == "2026-05-04 09:00 UTC" and stamp(AT, berlin) == "2026-05-04 11:00 Europe/Berlin"
    spans = (StageSpan(Stage.NEW, AT), StageSpan(Stage.ASSIGNED, AT.replace(hour=13)))
    record = FollowUpRecord(ticket().ref, "#4", "mobile", spans)
    promise = new_promise(ticket().ref, "an update", AT, origin="cli", due_at=AT.replace(hour=15))
    due = on_issue_resolved(promise, AT.replace(hour=14))
    review = build_review([record], [due], now=AT.replace(hour=16), rules={"mobile": PromiseRule("std", berlin)})
    (finding,) = review.promises_due
    assert finding.detail == "an update; tell the customer by 2026-05-04 17:00 Europe/Berlin"
    table = to_table(review)
    assert "flagged 2026-05-04 09:00 UTC, handed over 2026-05-04 13:00 UTC" in table
    assert "T09:00" not in table and "syncd review at 2026-05-04 16:00 UTC" in table
