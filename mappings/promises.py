"""Follow-up promises: how they are made and how they move.

A promise (:class:`syncd.records.Promise`) is open when made, falls *due*
when the linked work resolves, is *kept* when the agent then tells the
customer (a public reply or a solve), and is *broken* when its deadline
passes first. Every transition is a pure function returning the promise
unchanged or a new one with the change in its history; kept, broken and
cancelled are final. Each transition first applies the deadline, so an event
observed late (a reply seen after the deadline it came after) cannot turn a
broken promise into a kept one.

Promises are made by rules (an escalation promises an update within N
business days, and news when the work ships), by the agent in the helpdesk
(a follow-up date field or a follow-up tag), or by hand.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable, Mapping

from mappings.calendar import ALWAYS, BusinessCalendar, Duration
from syncd.records import Promise, PromiseChange, PromiseState, Ref, Ticket, idempotency_key, utc

ISSUE_RESOLVED = "issue_resolved"  # the trigger "when the issue ships"
ORIGINS = ("rule", "field", "tag", "cli")


@dataclass(frozen=True)
class PromiseRule:
    """A route's promise policy, from the mapping files (``[promises.<name>]``)."""

    name: str
    calendar: BusinessCalendar = ALWAYS
    update_within: Duration | None = None  # every escalation promises an update within this
    when_resolved: bool = True  # ... and news when the linked work resolves
    respond_within: Duration | None = None  # once due, the agent has this long to tell the customer
    triage_sla: Duration | None = None  # an issue without an assignee longer than this is an owner gap
    follow_up_window: Duration | None = None  # a reopen within this after Follow-up is rework
    stale_after: Duration | None = None  # the review's threshold for decision age
    follow_up_field: str | None = None  # a date field the agent sets: "follow up by this date"
    follow_up_tags: Mapping[str, Duration] = field(default_factory=dict)  # tag -> follow up within

    def due(self, start: datetime, duration: Duration | None) -> datetime | None:
        return None if duration is None else self.calendar.add(start, duration)


def new_promise(
    ticket: Ref,
    what: str,
    at: datetime,
    *,
    origin: str,
    issues: Iterable[Ref] = (),
    owner: str | None = None,
    due_at: datetime | None = None,
    trigger: str | None = None,
    rule: str | None = None,
    key: Iterable[object] = (),
) -> Promise:
    """A promise made at ``at``. ``key`` tells promises of one origin apart (the id is derived from it)."""
    if origin not in ORIGINS:
        raise ValueError(f"unknown promise origin {origin!r} (one of {', '.join(ORIGINS)})")
    if due_at is None and trigger is None:
        raise ValueError("a promise needs a due date, a trigger, or both")
    if trigger not in (None, ISSUE_RESOLVED):
        raise ValueError(f"unknown promise trigger {trigger!r} (only {ISSUE_RESOLVED!r})")
    at = utc(at)
    ident = idempotency_key("promise", ticket, origin, rule or "", what, *key)
    return Promise(
        id=ident,
        ticket=ticket,
        what=what,
        created_at=at,
        origin=origin,
        issues=tuple(issues),
        owner=owner,
        due_at=utc(due_at) if due_at else None,
        trigger=trigger,
        history=(PromiseChange(PromiseState.OPEN, at, f"made ({origin})"),),
        rule=rule,
    )


# -- made by rules and by the agent -------------------------------------------------------------


def handoff_promises(
    rule: PromiseRule, ticket: Ref, issues: Iterable[Ref], at: datetime, *, owner: str | None = None, epoch: str = ""
) -> list[Promise]:
    """What an escalation promises under ``rule``: an update by a deadline, news when it ships.

    ``epoch`` tells handoffs of one ticket apart (a rework starts a new one);
    within one handoff the same promises have the same ids, whenever made."""
    issues = tuple(issues)
    out = []
    if rule.update_within is not None:
        out.append(
            new_promise(
                ticket,
                f"an update within {rule.update_within}",
                at,
                origin="rule",
                issues=issues,
                owner=owner,
                due_at=rule.due(at, rule.update_within),
                rule=rule.name,
                key=(epoch,) if epoch else (),
            )
        )
    if rule.when_resolved:
        out.append(
            new_promise(
                ticket,
                "news when the linked work ships",
                at,
                origin="rule",
                issues=issues,
                owner=owner,
                trigger=ISSUE_RESOLVED,
                rule=rule.name,
                key=(epoch,) if epoch else (),
            )
        )
    return out


def promise_from_field(rule: PromiseRule, ticket: Ticket, issues: Iterable[Ref], at: datetime) -> Promise | None:
    """The agent's follow-up date (a date field): due at the close of business that day.

    None when the rule names no field, the field is empty, or it does not hold
    a date (the helpdesk's date fields hold ``YYYY-MM-DD``).
    """
    if not rule.follow_up_field:
        return None
    value = ticket.fields.get(rule.follow_up_field)
    try:
        day = date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None
    if day is None:
        return None
    return new_promise(
        ticket.ref,
        f"a follow-up by {day.isoformat()}",
        at,
        origin="field",
        issues=issues,
        owner=ticket.assignee_id,
        due_at=rule.calendar.end_of_day(day),
        rule=rule.name,
        key=(day.isoformat(),),
    )


def promises_from_tags(
    rule: PromiseRule, ticket: Ticket, added_tags: Iterable[str], issues: Iterable[Ref], at: datetime
) -> list[Promise]:
    """A follow-up tag the agent just added (``follow_up_tags``): due that long after ``at``."""
    issues = tuple(issues)
    out = []
    for tag in added_tags:
        within = rule.follow_up_tags.get(tag)
        if within is None:
            continue
        out.append(
            new_promise(
                ticket.ref,
                f"a follow-up within {within}",
                at,
                origin="tag",
                issues=issues,
                owner=ticket.assignee_id,
                due_at=rule.due(at, within),
                rule=rule.name,
                key=(tag, utc(at).isoformat()),
            )
        )
    return out


def owner_names(tickets: Iterable[Ticket]) -> dict[str, str]:
    """Agent id -> name, from the tickets whose helpdesk answer named their assignee: a
    promise's owner is the ticket's assignee id, and people read names."""
    return {t.assignee_id: t.assignee_name for t in tickets if t.assignee_id and t.assignee_name}


# -- transitions ---------------------------------------------------------------------------------


def _move(promise: Promise, state: PromiseState, at: datetime, reason: str) -> Promise:
    change = PromiseChange(state, utc(at), reason)
    return dataclasses.replace(promise, state=state, history=promise.history + (change,))


def on_clock(promise: Promise, now: datetime) -> Promise:
    """Broken once its deadline has passed while still open or due."""
    if promise.state.is_final or promise.due_at is None or utc(now) <= promise.due_at:
        return promise
    return _move(promise, PromiseState.BROKEN, promise.due_at, "deadline passed")


def on_issue_resolved(promise: Promise, at: datetime, *, respond_by: datetime | None = None) -> Promise:
    """Every linked issue is done or cancelled: the promise falls due.

    ``respond_by`` (from the rule's ``respond_within``) becomes the deadline
    unless the promise already has an earlier one.
    """
    promise = on_clock(promise, at)
    if promise.state is not PromiseState.OPEN:
        return promise
    due_at = promise.due_at
    if respond_by is not None:
        due_at = min(due_at, utc(respond_by)) if due_at else utc(respond_by)
    return dataclasses.replace(_move(promise, PromiseState.DUE, at, "linked work resolved"), due_at=due_at)


def on_public_reply(promise: Promise, at: datetime) -> Promise:
    """The agent wrote to the customer: keeps a due promise, or an open one with no trigger."""
    return _told(promise, at, "public reply")


def on_solved(promise: Promise, at: datetime) -> Promise:
    """The agent solved the ticket: counts as telling the customer, like a public reply."""
    return _told(promise, at, "ticket solved")


def _told(promise: Promise, at: datetime, reason: str) -> Promise:
    promise = on_clock(promise, at)
    if promise.state.is_final or utc(at) < promise.created_at:
        return promise
    if promise.state is PromiseState.DUE or promise.trigger is None:
        return _move(promise, PromiseState.KEPT, at, reason)
    return promise  # "when it ships": an update before then does not keep it


def on_cancel(promise: Promise, at: datetime, reason: str = "cancelled") -> Promise:
    """Withdrawn (by hand, or the follow-up ended): final, counts neither way."""
    if promise.state.is_final:
        return promise
    return _move(promise, PromiseState.CANCELLED, at, reason)


def apply_clock(promises: Iterable[Promise], now: datetime) -> list[Promise]:
    """:func:`on_clock` over many; convenient for the engine's timer."""
    return [on_clock(p, now) for p in promises]


def state_at(promise: Promise, at: datetime) -> PromiseState | None:
    """The promise's state at a past instant, from its history (None before it was made)."""
    state = None
    for change in promise.history:
        if change.at <= utc(at):
            state = change.state
    return state


def changed_at(promise: Promise, state: PromiseState) -> datetime | None:
    """When the promise entered ``state`` (the first time), if it did."""
    return next((c.at for c in promise.history if c.state is state), None)
