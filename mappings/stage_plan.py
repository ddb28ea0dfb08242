"""Planning a follow-up's stage: what the engine observes in, the stage write out.

Pure. The engine gathers the records (ticket, its new comments, its linked
issues and what it remembered of them) and the stored stage history; these
functions turn them into a :class:`~mappings.stages.Observation`, and a
stage change into one event and one ``ticket.update`` that sets the stage
field and swaps the stage tag. The action's key is derived from (ticket,
stage, since), so replaying the same change plans the same key.

Writes are kept few: when the same page already plans a ticket write (a
link note, a state note), ``TicketUpdate.with_stage`` folds the stage into it; a
stage write of its own carries a marker shared by every ticket entering the
same stage at the same time, so delivery can send them as one bulk update.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from mappings.planner import Plan, ticket_group
from mappings.routes import Mappings, Route
from mappings.stages import IssueView, Observation, StageResult, compute_stage, default_state_map
from syncd.records import Comment, Event, Issue, Stage, Ticket, idempotency_key, utc
from syncd.writes import TicketUpdate

STAGE_WORDS = {
    Stage.NEW: "New",
    Stage.NEEDS_CONTEXT: "Needs context",
    Stage.ASSIGNED: "Assigned",
    Stage.WAITING: "Waiting",
    Stage.RESOLVED: "Resolved",
    Stage.FOLLOW_UP: "Follow-up",
}


# What the stage field and tag show while an escalation's create stands refused (the stage is New).
HANDOFF_FAILED = "handoff_failed"


@dataclass(frozen=True)
class StageDisplay:
    """Where agents see the stage: a custom field's value and/or one tag ``<prefix><stage>``."""

    field: str | None = None
    tag_prefix: str | None = None

    @classmethod
    def of(cls, mappings: Mappings) -> "StageDisplay":
        return cls(mappings.stage_field, mappings.stage_tag_prefix)

    def tag(self, stage: Stage | str) -> str | None:
        value = stage.value if isinstance(stage, Stage) else stage
        return f"{self.tag_prefix}{value}" if self.tag_prefix else None

    def write(self, stage: Stage | None, marker: str | None = None, *, failed: bool = False) -> TicketUpdate:
        """The ticket write that shows ``stage`` (None: the ticket is no longer a follow-up);
        empty when the stage is shown nowhere. ``failed``: the handoff of a New follow-up
        was refused by the tracker; the field and tag show ``handoff_failed`` instead."""
        value = HANDOFF_FAILED if failed else (stage.value if stage else "")
        fields = {self.field: value} if self.field else {}
        add: tuple[str, ...] = ()
        remove: tuple[str, ...] = ()
        if self.tag_prefix:
            wanted = self.tag(value) if value else None
            add = (wanted,) if wanted else ()
            # Every other stage's tag goes, not only the previous one: exactly
            # one stage tag remains even if a person added another by hand.
            shown = [s.value for s in Stage] + [HANDOFF_FAILED]
            remove = tuple(t for v in shown if (t := self.tag(v)) is not None and t != wanted)
        if not (fields or add or remove):
            return TicketUpdate()
        return TicketUpdate(add_tags=add, remove_tags=remove, fields=fields, marker=marker)


# -- what the engine observes ------------------------------------------------------------------


IssueMark = tuple[Stage, datetime]  # the stage an issue stood for, and since when


def issue_view(issue: Issue, kind: str, route: Route | None, mark: IssueMark | None) -> tuple[IssueView, IssueMark]:
    """A linked issue as the stage computation sees it, and the mark to remember for it.

    The state map gives the issue's stage; it has stood for that stage since
    the remembered mark when the stage is unchanged, else since the issue's
    last change (the one that moved it).
    """
    stage, _shown = route.issue_stage(issue, kind) if route else default_state_map(kind).issue_stage(issue)
    since = mark[1] if mark is not None and mark[0] is stage else utc(issue.updated_at)
    unassigned = None if issue.assignee else since
    view = IssueView(issue.ref, stage, since, assignee=issue.assignee, unassigned_since=unassigned)
    return view, (stage, since)


def told_customer_at(
    ticket: Ticket, previous: Ticket | None, comments: Iterable[Comment], known: datetime | None
) -> datetime | None:
    """When an agent last told the customer: a public reply (not the requester's, not
    syncd's own) or solving the ticket. ``known`` is what was remembered before."""
    requester = ticket.requester.id if ticket.requester else None
    times = [utc(known)] if known else []
    times += [
        utc(c.created_at)
        for c in comments
        if c.public and not c.markers and c.author_id is not None and c.author_id != requester
    ]
    if ticket.status == "solved" and (previous is None or previous.status != "solved"):
        times.append(utc(ticket.updated_at))
    return max(times) if times else None


REOPENED_FROM = ("solved", "closed")


def reopened_at(ticket: Ticket, previous: Ticket | None, known: datetime | None) -> datetime | None:
    """When the ticket last came back from solved (a customer's reply reopens it in the helpdesk).

    Whether that counts as rework is :func:`~mappings.stages.compute_stage`'s
    call (only after Follow-up, within the window)."""
    if previous is not None and previous.status in REOPENED_FROM and ticket.status not in REOPENED_FROM:
        return utc(ticket.updated_at)
    return known


def observe(
    ticket: Ticket,
    route: Route | None,
    issues: Sequence[IssueView],
    *,
    now: datetime,
    told_at: datetime | None,
    reopened: datetime | None = None,
    notes: Sequence[str] = (),
) -> Observation:
    """The ticket's observation: flagged per its route, criteria judged only when the route names them.

    ``notes`` are the agent's own internal notes: text criteria (steps to
    reproduce, expected behaviour) may be met there as well as in the description."""
    flagged = route.is_flagged(ticket) if route else False
    criteria_met = None
    if route is not None and route.criteria and flagged:
        criteria_met = route.acceptance(ticket, notes).met
    return Observation(
        now=now,
        flagged=flagged,
        criteria_met=criteria_met,
        issues=tuple(issues),
        told_customer_at=told_at,
        reopened_at=reopened,
    )


def follow_up_stage(obs: Observation, route: Route | None, history: Sequence[tuple[Stage, datetime]]) -> StageResult:
    rule = route.promises if route else None
    if rule is not None:
        return compute_stage(obs, history, follow_up_window=rule.follow_up_window, calendar=rule.calendar)
    return compute_stage(obs, history)


# -- the plan ----------------------------------------------------------------------------------


def plan_stage(ticket: Ticket, result: StageResult, display: StageDisplay) -> Plan:
    """A stage change: an event for ``syncd history`` and one ticket write showing it.

    Nothing when the stage did not change (a replay, an echo of syncd's own write).
    """
    if not result.changed or result.stage is None:
        return Plan()
    stage, since = result.stage, result.since
    assert since is not None
    before = result.history[-2].stage if len(result.history) > 1 else None
    summary = (
        f"{ticket.key}: follow-up stage {STAGE_WORDS[before]} → {STAGE_WORDS[stage]}"
        if before
        else f"{ticket.key}: follow-up stage {STAGE_WORDS[stage]}"
    )
    event = Event(
        "stage",
        summary,
        ticket.ref,
        None,
        {"stage": stage.value, "from": before.value if before else None, "since": since.isoformat()},
    )
    plan = Plan(events=[event])
    write = display.write(stage, idempotency_key("stage", stage.value, since.isoformat()))
    if write:
        key = idempotency_key("stage", ticket.ref, stage.value, since.isoformat())
        plan.actions.append(write.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref)))
    return plan


__all__ = ["StageDisplay", "follow_up_stage", "issue_view", "observe", "plan_stage", "reopened_at", "told_customer_at"]
