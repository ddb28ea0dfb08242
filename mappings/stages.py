"""A follow-up's stage, computed from what syncd observes, and its owner gaps.

Pure: the engine gathers an :class:`Observation` (the ticket's flag and
acceptance verdict, the linked issues with the stage their state maps to,
when the agent last told the customer, when the customer last reopened) and
the stored history; :func:`compute_stage` returns the stage and the history
with the new transition appended, if any. Computing twice from the same input
gives the same answer, so a replayed page changes nothing.

The order of the rules follows the handoff table in DESIGN.md:

1. nothing flagged and nothing linked: not a follow-up (``None``);
2. flagged, nothing linked yet: New until judged (and while the issue is
   being created); judged incomplete: Needs context. Once an issue is
   linked the handoff has happened and the criteria no longer apply;
3. linked, some issue not resolved: Waiting if any is in progress, else Assigned;
4. every linked issue resolved: Resolved, or Follow-up once the agent has
   told the customer after the last resolution;
5. the customer reopening the ticket within the follow-up window after
   Follow-up is rework: back to New, and resolutions older than that reopen
   no longer count (the work has to move again).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable, NamedTuple, Sequence

from mappings.calendar import ALWAYS, BusinessCalendar, Duration
from mappings.templates import Template
from syncd.records import Issue, Ref, Stage, StateCategory, idempotency_key, utc

ISSUE_STAGES = (Stage.ASSIGNED, Stage.WAITING, Stage.RESOLVED)  # what a state map may yield
ACTIVE = (Stage.NEW, Stage.NEEDS_CONTEXT, Stage.ASSIGNED, Stage.WAITING, Stage.RESOLVED)
BEFORE_HANDOFF = (Stage.NEW, Stage.NEEDS_CONTEXT)  # flagged, not yet handed over to product


class StageSpan(NamedTuple):
    """One entry of a stage history: the stage and when it began."""

    stage: Stage
    since: datetime


@dataclass(frozen=True)
class IssueView:
    """A linked issue as the stage computation needs it."""

    ref: Ref
    stage: Stage  # ASSIGNED, WAITING or RESOLVED, from the route's state map
    since: datetime  # when the issue entered that stage
    assignee: str | None = None
    unassigned_since: datetime | None = None  # when it was created or lost its assignee


@dataclass(frozen=True)
class Observation:
    now: datetime
    flagged: bool = False  # the route's escalation tag or field is set
    criteria_met: bool | None = None  # None: syncd has not judged the handoff yet
    issues: tuple[IssueView, ...] = ()
    told_customer_at: datetime | None = None  # the agent's last public reply or solve
    reopened_at: datetime | None = None  # the customer's last reopen of the ticket


@dataclass(frozen=True)
class StageResult:
    stage: Stage | None  # None: the ticket is not a follow-up
    history: tuple[StageSpan, ...]
    changed: bool
    # Set when the customer's reopen counts as rework (every time it is computed;
    # ``changed`` tells the first time apart).
    rework_at: datetime | None = None

    @property
    def since(self) -> datetime | None:
        return self.history[-1].since if self.history else None


def compute_stage(
    obs: Observation,
    history: Sequence[tuple[Stage, datetime]] = (),  # StageSpan or plain pairs
    *,
    follow_up_window: Duration | None = None,
    calendar: BusinessCalendar = ALWAYS,
) -> StageResult:
    """The follow-up's stage now, and its history with any transition appended."""
    spans = tuple(StageSpan(Stage(s), utc(t)) for s, t in history)
    rework_at = _rework(obs, spans, follow_up_window, calendar)
    stage, since = _stage(obs, rework_at)
    if stage is None:
        return StageResult(None, spans, False, None)
    if spans and spans[-1].stage is stage:
        return StageResult(stage, spans, False, rework_at)
    if spans and since < spans[-1].since:
        # The issue's time predates the ticket's stage: it says nothing of when
        # this ticket moved. Handed over from before the handoff, it moved when
        # syncd saw its link (the issue may have been worked on for weeks);
        # else no earlier than its previous stage began.
        handed_over = spans[-1].stage in BEFORE_HANDOFF and stage not in BEFORE_HANDOFF
        since = max(utc(obs.now), spans[-1].since) if handed_over else spans[-1].since
    return StageResult(stage, spans + (StageSpan(stage, since),), True, rework_at)


def _rework(
    obs: Observation, history: tuple[StageSpan, ...], window: Duration | None, calendar: BusinessCalendar
) -> datetime | None:
    """The customer's reopen, if it came within the window of the latest Follow-up."""
    if obs.reopened_at is None:
        return None
    follow_ups = [span for span in history if span.stage is Stage.FOLLOW_UP]
    if not follow_ups:
        return None
    began = follow_ups[-1].since
    reopened = utc(obs.reopened_at)
    if reopened <= began:
        return None
    if window is not None and reopened > calendar.add(began, window):
        return None  # the follow-up had closed: a new conversation, not rework
    return reopened


def _stage(obs: Observation, rework_at: datetime | None) -> tuple[Stage | None, datetime]:
    now = utc(obs.now)
    if not obs.flagged and not obs.issues:
        return (Stage.NEW, rework_at) if rework_at else (None, now)
    if not obs.issues:
        if obs.flagged and obs.criteria_met is False:
            return Stage.NEEDS_CONTEXT, now
        return Stage.NEW, rework_at or now
    open_issues = [i for i in obs.issues if i.stage is not Stage.RESOLVED]
    if open_issues:
        if any(i.stage is Stage.WAITING for i in open_issues):
            return Stage.WAITING, min(utc(i.since) for i in open_issues if i.stage is Stage.WAITING)
        return Stage.ASSIGNED, now
    resolved_at = max(utc(i.since) for i in obs.issues)
    if rework_at is not None and resolved_at <= rework_at:
        return Stage.NEW, rework_at
    told = utc(obs.told_customer_at) if obs.told_customer_at else None
    if told is not None and told > resolved_at:
        return Stage.FOLLOW_UP, told
    return Stage.RESOLVED, resolved_at


def rework_count(history: Iterable[StageSpan], since: datetime | None = None) -> int:
    """Reopens after a follow-up that counted as rework (Follow-up → New in the history)."""
    spans = list(history)
    return sum(
        1
        for before, after in zip(spans, spans[1:])
        if before.stage is Stage.FOLLOW_UP
        and after.stage is Stage.NEW
        and (since is None or utc(after.since) >= utc(since))
    )


# -- owner gaps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnerGap:
    """An active follow-up without one accountable owner on one side."""

    kind: str  # "ticket" (no agent) or "issue" (no assignee past the triage SLA)
    ref: Ref
    since: datetime  # when the side became ownerless

    @property
    def key(self) -> str:
        """Stable per gap, so the note about it is written once."""
        return idempotency_key("owner_gap", self.kind, self.ref, self.since.isoformat())


def owner_gaps(
    stage: Stage | None,
    ticket: Ref,
    ticket_assignee: str | None,
    issues: Iterable[IssueView],
    *,
    now: datetime,
    ticket_unassigned_since: datetime | None = None,
    triage_sla: Duration | None = None,
    calendar: BusinessCalendar = ALWAYS,
) -> list[OwnerGap]:
    """Owner gaps of a follow-up at ``now``.

    A ticket without an assignee is a gap at once while the follow-up is
    active (New to Resolved: at Resolved the agent still has to tell the
    customer). An unresolved issue without an assignee is a gap once it has
    been so for longer than ``triage_sla`` (at once without one).
    """
    if stage not in ACTIVE:
        return []
    now = utc(now)
    gaps: list[OwnerGap] = []
    if not ticket_assignee:
        gaps.append(OwnerGap("ticket", ticket, utc(ticket_unassigned_since or now)))
    for issue in issues:
        if issue.stage is Stage.RESOLVED or issue.assignee:
            continue
        since = utc(issue.unassigned_since or issue.since)
        if triage_sla is None or _triage_deadline(calendar, since, triage_sla) <= now:
            gaps.append(OwnerGap("issue", issue.ref, since))
    return gaps


@functools.lru_cache(maxsize=1024)
def _triage_deadline(calendar: BusinessCalendar, since: datetime, sla: Duration) -> datetime:
    """``calendar.add(since, sla)``, worked out once for an issue whose linked tickets each ask
    (pure: the calendar and the duration are frozen values)."""
    return calendar.add(since, sla)


def decision_age(
    history: Sequence[StageSpan], now: datetime, calendar: BusinessCalendar = ALWAYS, *, business: bool = False
) -> timedelta:
    """How long the follow-up has sat in its current stage."""
    if not history:
        return timedelta(0)
    since = utc(history[-1].since)
    if business:
        return calendar.business_time_between(since, utc(now))
    return max(timedelta(0), utc(now) - since)


# -- state maps: a tracker's state → an issue's stage and what agents see -------------------------

DEFAULT_STAGE = {
    StateCategory.TRIAGE: Stage.ASSIGNED,
    StateCategory.BACKLOG: Stage.ASSIGNED,
    StateCategory.UNSTARTED: Stage.ASSIGNED,
    StateCategory.STARTED: Stage.WAITING,
    StateCategory.COMPLETED: Stage.RESOLVED,
    StateCategory.CANCELED: Stage.RESOLVED,
}
SHOW_VALUES = frozenset({"state_name", "issue_key", "owner"})


@dataclass(frozen=True)
class StateRule:
    when: tuple[tuple[str, str], ...]  # Issue.native key, value: all must hold (compared case-insensitively)
    stage: Stage
    show: Template = Template("show", "{state_name}")

    def matches(self, native: dict[str, str | None]) -> bool:
        return all((native.get(k) or "").casefold() == v.casefold() for k, v in self.when)


@dataclass(frozen=True)
class StateMap:
    """A tracker's states → stage: the first matching rule wins, else the category's default.

    Rules read :attr:`Issue.native`, the tracker's own state words that its
    connector records; ``kind`` is the tracker kind the map was written for."""

    name: str
    kind: str
    rules: tuple[StateRule, ...] = ()

    def rule_for(self, issue: Issue) -> StateRule | None:
        """The first rule ``issue`` matches, if any."""
        return next((rule for rule in self.rules if rule.matches(issue.native)), None)

    def issue_stage(self, issue: Issue) -> tuple[Stage, str]:
        """The stage the issue stands for, and the value agents see for it."""
        rule = self.rule_for(issue)
        if rule is not None:
            return rule.stage, rule.show.render(show_values(issue))
        return DEFAULT_STAGE[issue.state], issue.state_name

    def shown(self, issue: Issue, escape: Callable[[str], str] = str) -> str | None:
        """The ``show`` text of the rule ``issue`` matches (its values passed through
        ``escape`` for where the text goes), None where no rule matches."""
        rule = self.rule_for(issue)
        if rule is None:
            return None
        return rule.show.render({k: escape(v) for k, v in show_values(issue).items()})


def show_values(issue: Issue, key: str | None = None) -> dict[str, str]:
    """What a state rule's ``show`` may name."""
    return {"state_name": issue.state_name, "issue_key": key or issue.key, "owner": issue.assignee or "unassigned"}


def default_state_map(kind: str) -> StateMap:
    return StateMap(f"default-{kind}", kind)
