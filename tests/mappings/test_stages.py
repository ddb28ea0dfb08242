"""Stage computation, owner gaps and state maps: pure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mappings.calendar import BusinessCalendar, Duration
from mappings.stages import (
    IssueView,
    Observation,
    StageSpan,
    StateMap,
    StateRule,
    compute_stage,
    decision_age,
    owner_gaps,
    rework_count,
)
from mappings.templates import Template
from syncd.records import Issue, Ref, Stage, StateCategory

UTC = timezone.utc
T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
TICKET = Ref("zendesk", "42")
A, B = Ref("linear", "a"), Ref("linear", "b")
WINDOW = Duration(7, "days")


def h(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def step(obs: Observation, history=()):
    return compute_stage(obs, history, follow_up_window=WINDOW)


def test_not_flagged_not_linked_is_not_a_follow_up():
    result = step(Observation(now=h(0)))
    assert result.stage is None and result.history == () and not result.changed


def test_flagged_ticket_walks_every_stage():
    history = ()
    seen = []

    def observe(obs):
        nonlocal history
        result = step(obs, history)
        history = result.history
        seen.append(result.stage)
        return result

    observe(Observation(now=h(0), flagged=True))  # not judged yet
    observe(Observation(now=h(1), flagged=True, criteria_met=False))
    observe(Observation(now=h(2), flagged=True, criteria_met=True))  # issue being created
    observe(Observation(now=h(3), flagged=True, criteria_met=True, issues=(IssueView(A, Stage.ASSIGNED, h(3)),)))
    observe(Observation(now=h(5), flagged=True, criteria_met=True, issues=(IssueView(A, Stage.WAITING, h(4)),)))
    observe(Observation(now=h(9), flagged=True, criteria_met=True, issues=(IssueView(A, Stage.RESOLVED, h(8)),)))
    final = observe(
        Observation(
            now=h(11),
            flagged=True,
            criteria_met=True,
            issues=(IssueView(A, Stage.RESOLVED, h(8)),),
            told_customer_at=h(10),
        )
    )
    assert seen == [
        Stage.NEW,
        Stage.NEEDS_CONTEXT,
        Stage.NEW,
        Stage.ASSIGNED,
        Stage.WAITING,
        Stage.RESOLVED,
        Stage.FOLLOW_UP,
    ]
    assert [s.stage for s in final.history] == [
        Stage.NEW,
        Stage.NEEDS_CONTEXT,
        Stage.NEW,
        Stage.ASSIGNED,
        Stage.WAITING,
        Stage.RESOLVED,
        Stage.FOLLOW_UP,
    ]
    # Each stage begins when what caused it happened, not when syncd noticed.
    assert final.history[4].since == h(4)
    assert final.history[5].since == h(8)
    assert final.history[6].since == h(10)


def test_same_observation_twice_changes_nothing():
    obs = Observation(now=h(1), issues=(IssueView(A, Stage.WAITING, h(0)),))
    first = step(obs)
    again = step(obs, first.history)
    assert first.changed and not again.changed and again.history == first.history


def test_waiting_while_any_issue_is_in_progress_and_resolved_only_when_all_are():
    both = (IssueView(A, Stage.RESOLVED, h(2)), IssueView(B, Stage.ASSIGNED, h(1)))
    assert step(Observation(now=h(3), issues=both)).stage is Stage.ASSIGNED
    both = (IssueView(A, Stage.RESOLVED, h(2)), IssueView(B, Stage.WAITING, h(1)))
    assert step(Observation(now=h(3), issues=both)).stage is Stage.WAITING
    both = (IssueView(A, Stage.RESOLVED, h(2)), IssueView(B, Stage.RESOLVED, h(4)))
    result = step(Observation(now=h(5), issues=both))
    assert result.stage is Stage.RESOLVED and result.since == h(4)


def test_a_reply_before_the_resolution_does_not_make_follow_up():
    issues = (IssueView(A, Stage.RESOLVED, h(5)),)
    assert step(Observation(now=h(6), issues=issues, told_customer_at=h(4))).stage is Stage.RESOLVED


def test_linked_by_hand_without_flag_follows_the_issue():
    assert step(Observation(now=h(1), issues=(IssueView(A, Stage.ASSIGNED, h(0)),))).stage is Stage.ASSIGNED


def test_criteria_do_not_apply_once_an_issue_is_linked():
    obs = Observation(now=h(1), flagged=True, criteria_met=False, issues=(IssueView(A, Stage.WAITING, h(0)),))
    assert step(obs).stage is Stage.WAITING


def _followed_up():
    issues = (IssueView(A, Stage.RESOLVED, h(8)),)
    history = (
        StageSpan(Stage.NEW, h(0)),
        StageSpan(Stage.ASSIGNED, h(1)),
        StageSpan(Stage.RESOLVED, h(8)),
        StageSpan(Stage.FOLLOW_UP, h(10)),
    )
    return issues, history


def test_customer_reopen_within_the_window_is_rework_and_old_resolutions_do_not_count():
    issues, history = _followed_up()
    result = step(
        Observation(
            now=h(30), flagged=True, criteria_met=True, issues=issues, told_customer_at=h(10), reopened_at=h(29)
        ),
        history,
    )
    assert result.stage is Stage.NEW and result.changed and result.rework_at == h(29)
    assert rework_count(result.history) == 1
    # Next cycle, nothing new: still New, not a second rework, not Resolved again.
    again = step(
        Observation(
            now=h(31), flagged=True, criteria_met=True, issues=issues, told_customer_at=h(10), reopened_at=h(29)
        ),
        result.history,
    )
    assert again.stage is Stage.NEW and not again.changed
    # New work is linked and resolves: Resolved again, then Follow-up.
    issues2 = issues + (IssueView(B, Stage.RESOLVED, h(40)),)
    later = step(
        Observation(
            now=h(41), flagged=True, criteria_met=True, issues=issues2, told_customer_at=h(10), reopened_at=h(29)
        ),
        again.history,
    )
    assert later.stage is Stage.RESOLVED and later.since == h(40)


def test_customer_reopen_after_the_window_is_not_rework():
    issues, history = _followed_up()
    result = step(
        Observation(now=h(300), issues=issues, told_customer_at=h(10), reopened_at=h(10 + 7 * 24 + 1)), history
    )
    assert result.stage is Stage.FOLLOW_UP and not result.changed and result.rework_at is None


def test_history_never_goes_back_in_time():
    history = (StageSpan(Stage.ASSIGNED, h(5)),)
    result = step(Observation(now=h(6), issues=(IssueView(A, Stage.WAITING, h(2)),)), history)
    assert result.history[-1] == StageSpan(Stage.WAITING, h(5))


# -- owner gaps ---------------------------------------------------------------------------------------

CAL = BusinessCalendar("Europe/Berlin", frozenset(range(5)), 9 * 60, 17 * 60)


def test_ticket_without_assignee_is_a_gap_at_once():
    gaps = owner_gaps(Stage.WAITING, TICKET, None, (), now=h(1), ticket_unassigned_since=h(0))
    assert [(g.kind, g.ref, g.since) for g in gaps] == [("ticket", TICKET, h(0))]
    assert owner_gaps(Stage.FOLLOW_UP, TICKET, None, (), now=h(1)) == []


def test_unassigned_issue_is_a_gap_after_the_triage_sla_in_business_hours():
    friday_4pm = datetime(2024, 6, 7, 14, 0, tzinfo=UTC)  # 16:00 Berlin
    issue = IssueView(A, Stage.ASSIGNED, friday_4pm, assignee=None, unassigned_since=friday_4pm)
    sla = Duration(4, "hours", business=True)
    monday_10 = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)  # 1 + 1 = 2 business hours
    monday_1201 = datetime(2024, 6, 10, 10, 1, tzinfo=UTC)
    kwargs = dict(triage_sla=sla, calendar=CAL)
    assert owner_gaps(Stage.ASSIGNED, TICKET, "agent", [issue], now=monday_10, **kwargs) == []
    gaps = owner_gaps(Stage.ASSIGNED, TICKET, "agent", [issue], now=monday_1201, **kwargs)
    assert [(g.kind, g.ref) for g in gaps] == [("issue", A)]
    assert (
        gaps[0].key
        == owner_gaps(Stage.ASSIGNED, TICKET, "agent", [issue], now=monday_1201 + timedelta(hours=1), **kwargs)[0].key
    )


def test_assigned_or_resolved_issues_are_no_gap():
    issues = [IssueView(A, Stage.WAITING, h(0), assignee="ravi"), IssueView(B, Stage.RESOLVED, h(0))]
    assert owner_gaps(Stage.WAITING, TICKET, "agent", issues, now=h(100)) == []


def test_decision_age():
    history = (StageSpan(Stage.WAITING, datetime(2024, 6, 7, 14, 0, tzinfo=UTC)),)
    now = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)
    assert decision_age(history, now) == timedelta(days=2, hours=18)
    assert decision_age(history, now, CAL, business=True) == timedelta(hours=2)


# -- state maps ----------------------------------------------------------------------------------------


def issue(category: StateCategory, name: str, *, assignee=None) -> Issue:
    return Issue(
        A,
        "ENG-1",
        "https://x/ENG-1",
        "t",
        category,
        name,
        T0,
        assignee=assignee,
        native={"type": category.value, "name": name},
    )


def test_state_map_first_matching_rule_wins_and_shows_its_value():
    smap = StateMap(
        "linear",
        "linear",
        (
            StateRule((("name", "In Review"),), Stage.WAITING, Template("show", "Fix in review ({owner})")),
            StateRule((("type", "started"),), Stage.WAITING, Template("show", "In progress: {state_name}")),
            StateRule((("type", "triage"),), Stage.ASSIGNED, Template("show", "Waiting for triage")),
        ),
    )
    assert smap.issue_stage(issue(StateCategory.STARTED, "in review", assignee="lena")) == (
        Stage.WAITING,
        "Fix in review (lena)",
    )
    assert smap.issue_stage(issue(StateCategory.STARTED, "Doing")) == (Stage.WAITING, "In progress: Doing")
    # No rule: the category's default, showing the tracker's name.
    assert smap.issue_stage(issue(StateCategory.CANCELED, "Canceled")) == (Stage.RESOLVED, "Canceled")
    assert smap.issue_stage(issue(StateCategory.BACKLOG, "Backlog")) == (Stage.ASSIGNED, "Backlog")


def test_a_handoff_is_dated_when_syncd_sees_it_not_when_the_issue_began_weeks_before():
    """A flagged ticket linked at h(5) to an issue in progress since long before: the
    handoff (and the Waiting that follows) begins at h(5), not at the flag (h(0))."""
    waiting_long = (IssueView(A, Stage.WAITING, h(-500)),)
    flagged = step(Observation(now=h(0), flagged=True, criteria_met=False, issues=()))
    assert flagged.stage is Stage.NEEDS_CONTEXT
    linked = step(Observation(now=h(5), flagged=True, criteria_met=False, issues=waiting_long), flagged.history)
    assert linked.stage is Stage.WAITING and linked.since == h(5)
    # Seen first with its issue already (the first run): the issue's own time stands.
    first = step(Observation(now=h(5), flagged=True, criteria_met=True, issues=waiting_long))
    assert first.stage is Stage.WAITING and first.since == h(-500)
    # Assigned → Waiting on an issue started before the ticket was assigned: no earlier than Assigned.
    assigned = step(
        Observation(now=h(1), flagged=True, criteria_met=True, issues=(IssueView(A, Stage.ASSIGNED, h(-600)),))
    )
    moved = step(Observation(now=h(9), flagged=True, criteria_met=True, issues=waiting_long), assigned.history)
    assert moved.stage is Stage.WAITING and moved.since == assigned.since
