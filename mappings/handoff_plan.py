"""Planning the handoff's writes: escalation, the needs-context note, promises, owner gaps, demand.

Pure: the engine gathers the records and what it remembered, these functions
return :class:`~mappings.planner.Plan` objects (outbox actions with
deterministic keys, events) and the values the engine should remember next.
Every outside value goes through :mod:`mappings.escaping` for the format it
lands in; on a tracker that is not private (a public GitHub repository) only
the ``*_public`` templates are used, which are given no customer data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Callable, Iterable, Mapping, Sequence

from mappings.calendar import ALWAYS, BusinessCalendar
from mappings.escaping import escape, escape_values
from mappings.planner import Plan, issue_group, opaque_ref, ticket_group
from mappings.routes import Route
from mappings.stages import OwnerGap
from mappings.templates import Template
from syncd.records import Event, Issue, Promise, PromiseState, Stage, Ticket, idempotency_key, utc
from syncd.writes import (
    NOTE_SEPARATOR,
    Action,
    CreateIssue,
    DraftText,
    FollowUpTicket,
    IssueComment,
    TicketUpdate,
    UpsertComment,
)

DEMAND_SLOT = "demand"


def show_time(at: datetime | None, calendar: BusinessCalendar = ALWAYS) -> str:
    """A deadline as people read it, in the team's time zone: ``Tue 24 Nov 2026 17:00 CET``."""
    if at is None:
        return "—"
    local = calendar.local(utc(at))
    return local.strftime("%a %d %b %Y %H:%M ") + (local.tzname() or "UTC")


def promise_text(promise: Promise, calendar: BusinessCalendar = ALWAYS) -> str:
    """``an update within 2 business days (by Tue 24 Nov 2026 17:00 CET)``."""
    if promise.due_at is None:
        return promise.what
    return f"{promise.what} (by {show_time(promise.due_at, calendar)})"


def promises_text(promises: Iterable[Promise], calendar: BusinessCalendar = ALWAYS) -> str:
    texts = [promise_text(p, calendar) for p in promises if not p.state.is_final]
    return "; ".join(texts) if texts else "nothing yet"


# -- needs context -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MissingNote:
    plan: Plan
    noted: tuple[str, ...]  # every label the agent has been told about in this escalation
    field_value: str | None  # what the "missing" field should show now (None: no field)


def plan_missing(
    ticket: Ticket,
    route: Route,
    missing: Sequence[str],
    noted: Sequence[str],
    *,
    missing_field: str | None = None,
    shown: str | None = None,
    note_format: str = "plain",
) -> MissingNote:
    """The needs-context note: written once per escalation, never repeated.

    Zendesk cannot edit a comment, so "in place" is the ``missing_field``
    (when the admins name one): it always shows what is still missing. The
    internal note is written when the ticket is first judged incomplete, and
    again only when something is missing that no earlier note listed (the
    agent removed information); the same list is never written twice.
    """
    missing = tuple(missing)
    new = [label for label in missing if label not in noted]
    plan = Plan()
    noted_now = tuple(dict.fromkeys([*noted, *missing]))
    write = TicketUpdate()
    if missing and new:
        values = escape_values({"ticket_key": ticket.key, "route": route.name}, note_format)
        values["missing"] = missing_list_escaped(missing, note_format)
        values["missing_count"] = len(missing)
        write = replace(write, note=route.templates["needs_context"].render(values))
        plan.events.append(
            Event(
                "handoff_rejected",
                f"{ticket.key}: not handed over yet; missing " + ", ".join(missing),
                ticket.ref,
                None,
                {"route": route.name, "missing": list(missing)},
            )
        )
    field_value = None
    if missing_field:
        # A field shows its value as written, whatever the notes' format: escaped as plain text.
        field_value = missing_list_escaped(missing, "plain") if missing else ""
        if field_value != (shown or ""):
            write = replace(write, fields={missing_field: field_value})
    if write:
        key = idempotency_key("needs_context", ticket.ref, *missing, "|", *noted)
        plan.actions.append(write.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref)))
    return MissingNote(plan, noted_now if missing else tuple(noted), field_value)


def missing_list_escaped(missing: Sequence[str], fmt: str) -> str:
    return "\n".join(f"- {escape(label, fmt)}" for label in missing)


# -- escalation ----------------------------------------------------------------------------------------------


def plan_handoff(
    ticket: Ticket,
    route: Route,
    *,
    note: str | None,
    promises: Sequence[Promise],
    customer_count: int,
    epoch: str = "",
    helpdesk_name: str = "Helpdesk",
    body_format: str = "markdown",
    attempt: int = 0,
) -> Plan:
    """Create the issue in the route's tracker with the handoff record.

    Two drafts are planned: the whole record for a private team and, for a
    public one, only an opaque reference and counts. Delivery asks the
    tracker which applies when it sends (a repository's visibility can
    change in between, and asking is a request, which has no place in the
    page's transaction).

    The key is per (ticket, escalation epoch): flagging again, or the same
    change seen twice, plans the same key, which the outbox refuses, so the
    issue is created once. ``epoch`` changes only when the follow-up starts
    over (rework), which is a new handoff. ``attempt`` counts the times the
    handoff was planned again by hand after the tracker refused it (``syncd
    escalate``): each is a new create, with a key of its own.

    ``body_format`` is the tracker's ``text_format``: the description is
    escaped for it (Markdown for Linear and GitHub, ``"adf"`` for Jira).
    """
    calendar = route.promises.calendar if route.promises else ALWAYS
    severity = route.severity(ticket)
    org = ticket.organization
    shared = {
        "severity": severity or "not set",
        "route": route.name,
        "customer_count": customer_count,
        "promise": promises_text(promises, calendar),
    }
    t = route.templates
    agent = ticket.assignee_name or (f"agent {ticket.assignee_id}" if ticket.assignee_id else "unassigned")
    values = escape_values(
        {
            **shared,
            "ticket_key": f"{helpdesk_name} {ticket.key}",
            "ticket_url": ticket.url,
            "ticket_subject": ticket.subject,
            "organization": org.name if org else "unknown",
            "tier": (org.tier if org else None) or "tier unknown",
            "agent": agent,
            "internal_note": note or "(no internal note)",
        },
        body_format,
    )
    private = DraftText(
        t["handoff_title"].render(_title_values(ticket, severity, route, helpdesk_name))[:250],
        t["handoff_body"].render(values),
    )
    values = escape_values(shared, body_format)
    # syncd's own "T-<hex>", written as it is so people can search the tracker for it.
    values["opaque_ref"] = opaque_ref(ticket.ref)
    title_values = {"opaque_ref": opaque_ref(ticket.ref), "severity": severity or "not set", "route": route.name}
    public = DraftText(t["handoff_title_public"].render(title_values), t["handoff_body_public"].render(values))
    key = idempotency_key("escalate", ticket.ref, route.tracker, route.team, epoch, *([attempt] if attempt else []))
    write = CreateIssue(route.team, private, public, tuple(route.labels), severity, ticket.ref.id)
    action = write.action(key, route.tracker, route.team, f"escalate:{ticket.ref}")
    event = Event(
        "escalating",
        f"{ticket.key}: handoff accepted; creating the issue in {route.tracker} {route.team}",
        ticket.ref,
        None,
        {"route": route.name, "key": key},
    )
    return Plan(actions=[action], events=[event])


# Why the tracker refused the create, in the words the agent's note uses (see syncd.delivery).
REFUSAL_WORDS = {
    "no_such_place": "there is no such team, project or repository, or syncd's account cannot see it",
    "permission": "syncd's account is not allowed to create issues there",
    "refused": "it did not accept the new issue",
}


def plan_handoff_failed(
    ticket: Ticket,
    *,
    route: str,
    tracker: str,
    place: str,
    why: str,
    template: Template,
    shown: TicketUpdate,
    key: str,
    note_format: str = "plain",
) -> Plan:
    """The tracker refused to create the handoff's issue for good: the agent gets an
    internal note saying so in plain words, and the stage field and tag show it
    (``shown``, the stage display's write), in one ticket write keyed ``key``."""
    values = escape_values(
        {
            "ticket_key": ticket.key,
            "route": route,
            "tracker": tracker,
            "place": place,
            "reason": REFUSAL_WORDS.get(why, REFUSAL_WORDS["refused"]),
        },
        note_format,
    )
    write = replace(shown, note=template.render(values), marker=None)
    event = Event(
        "handoff_failed",
        f"{ticket.key}: the handoff failed: {tracker} refused to create the issue in {place} "
        f"({REFUSAL_WORDS.get(why, REFUSAL_WORDS['refused'])})",
        ticket.ref,
        None,
        {"route": route, "tracker": tracker, "place": place, "why": why},
    )
    action = write.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref))
    return Plan(actions=[action] if ticket.can_update else [], events=[event])


def _title_values(ticket: Ticket, severity: str | None, route: Route, helpdesk_name: str) -> dict[str, object]:
    """Title values: a title is plain text in every tracker, so only made inert, not Markdown-escaped."""
    org = ticket.organization
    return escape_values(
        {
            "ticket_key": f"{helpdesk_name} {ticket.key}",
            "ticket_subject": ticket.subject,
            "organization": org.name if org else "unknown",
            "severity": severity or "not set",
            "route": route.name,
        },
        "plain",
    )


# -- promises --------------------------------------------------------------------------------------------------


def _own_key(issue: Issue) -> str:
    return issue.key


def plan_promise_due(
    ticket: Ticket,
    issues: Sequence[Issue],
    due: Sequence[Promise],
    route: Route,
    note_format: str = "plain",
    key_of: Callable[[Issue], str] = _own_key,
) -> str:
    """The note telling the agent what to tell the customer, and by when.

    ``key_of``: an issue's key as notes name it (with its tracker where keys could clash)."""
    calendar = route.promises.calendar if route.promises else ALWAYS
    last = max(issues, key=lambda i: i.updated_at) if issues else None
    summary = "\n".join(
        f"- {escape(key_of(i), note_format)}: {escape(i.state_name, note_format)}"
        for i in sorted(issues, key=lambda i: i.key)
    )
    values = escape_values(
        {
            "issue_key": key_of(last) if last else "",
            "issue_title": last.title if last else "",
            "issue_url": last.url if last else "",
            "state_name": last.state_name if last else "",
            "owner": (last.assignee if last else None) or "unassigned",
            "promise": "; ".join(p.what for p in due),
            "due": show_time(min((p.due_at for p in due if p.due_at), default=None), calendar),
        },
        note_format,
    )
    values["summary"] = summary
    return route.templates["promise_due"].render(values)


def plan_follow_up_ticket(
    ticket: Ticket,
    issues: Sequence[Issue],
    note: str,
    route: Route,
    since: datetime,
    note_format: str = "plain",
    key_of: Callable[[Issue], str] = _own_key,
) -> Plan:
    """The ticket is closed and cannot be reopened: a new ticket follows it up."""
    last = max(issues, key=lambda i: i.updated_at) if issues else None
    summary = "\n".join(
        f"- {escape(key_of(i), note_format)}: {escape(i.state_name, note_format)}"
        for i in sorted(issues, key=lambda i: i.key)
    )
    values = escape_values({"ticket_key": ticket.key, "issue_key": key_of(last) if last else ""}, note_format)
    values["summary"] = summary
    first = route.templates["follow_up_ticket"].render(values)
    subject = f"Follow-up: {ticket.subject}"[:250]
    write = FollowUpTicket(
        subject,
        first + NOTE_SEPARATOR + note,
        ticket.requester.id if ticket.requester else None,
        ticket.assignee_id,
        ("syncd_followup",),
    )
    key = idempotency_key("followup", ticket.ref, utc(since).isoformat())
    action = write.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref))
    event = Event(
        "followup_ticket", f"{ticket.key} is closed: opening a follow-up ticket for it", ticket.ref, None, {"key": key}
    )
    return Plan(actions=[action], events=[event])


def plan_promise_broken(
    ticket: Ticket, promise: Promise, route: Route | None, *, tag: str, note_format: str = "plain"
) -> Plan:
    """A deadline passed: a note and a tag on the ticket (nothing to write on a closed one)."""
    calendar = route.promises.calendar if route and route.promises else ALWAYS
    templates = route.templates if route else None
    event = Event(
        "promise_broken",
        f"{ticket.key}: promise broken ({promise.what}, due {show_time(promise.due_at, calendar)})",
        ticket.ref,
        None,
        {"promise": promise.id, "due_at": promise.due_at.isoformat() if promise.due_at else None},
    )
    plan = Plan(events=[event])
    if not ticket.can_update or templates is None:
        return plan
    values = escape_values(
        {"ticket_key": ticket.key, "promise": promise.what, "due": show_time(promise.due_at, calendar)}, note_format
    )
    write = TicketUpdate(note=templates["promise_broken"].render(values), add_tags=(tag,))
    key = idempotency_key("promise_broken", promise.id)
    plan.actions.append(write.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref)))
    return plan


def promise_event(promise: Promise, ticket_key: str) -> Event:
    """One history line for a promise's latest change."""
    change = promise.history[-1]
    return Event(
        "promise",
        f"{ticket_key}: promise {change.state.value} — {promise.what} ({change.reason})",
        promise.ticket,
        None,
        {"promise": promise.id, "state": change.state.value, "reason": change.reason},
    )


# -- owner gaps -------------------------------------------------------------------------------------------------


def plan_owner_gap(
    ticket: Ticket,
    gap: OwnerGap,
    stage: Stage,
    route: Route,
    issue: Issue | None,
    *,
    triage_sla: str,
    note_format: str = "plain",
    issue_format: str = "markdown",
) -> Plan:
    """Noted once per gap (its key holds when it began): on the ticket, or on the issue."""
    calendar = route.promises.calendar if route.promises else ALWAYS
    t = route.templates
    if gap.kind == "ticket":
        values = escape_values({"ticket_key": ticket.key, "stage": stage.label}, note_format)
        action = TicketUpdate(note=t["owner_gap_ticket"].render(values)).action(
            gap.key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref)
        )
        what = f"{ticket.key} has no assigned agent"
        issue_ref = None
    else:
        assert issue is not None
        values = escape_values(
            {
                "issue_key": issue.key,
                "issue_title": issue.title,
                "unassigned_since": show_time(gap.since, calendar),
                "triage_sla": triage_sla,
            },
            issue_format,
        )
        action = IssueComment(t["owner_gap_issue"].render(values)).action(
            gap.key, issue.ref.connector, issue.ref.id, issue_group(issue.ref)
        )
        what = f"{issue.key} has no assignee (linked to {ticket.key})"
        issue_ref = issue.ref
    event = Event(
        "owner_gap",
        f"owner gap: {what}",
        ticket.ref,
        issue_ref,
        {"kind": gap.kind, "ref": str(gap.ref), "since": gap.since.isoformat(), "key": gap.key},
    )
    return Plan(actions=[action], events=[event])


# -- demand on the issue ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemandTicket:
    ticket: Ticket
    severity: str | None  # the ticket's severity per its route
    severity_rank: int | None  # position in the route's order (0 most severe)


def demand_body(
    issue: Issue,
    tickets: Sequence[DemandTicket],
    promises: Sequence[Promise],
    *,
    private: bool,
    templates: Mapping[str, Template],
    calendar: BusinessCalendar = ALWAYS,
    fmt: str = "markdown",
) -> str:
    """What the issue shows about who is asking: counts, highest severity, oldest open promise.

    Customer names appear only where the tracker is private.
    """
    orgs = {dt.ticket.organization.id: dt.ticket.organization for dt in tickets if dt.ticket.organization}
    ranked = [(dt.severity_rank, dt) for dt in tickets if dt.severity_rank is not None]
    highest = min(ranked, key=lambda pair: pair[0])[1].severity if ranked else None
    first = _oldest_open(promises)
    oldest = (
        (
            f"{first.what}, made {show_time(first.created_at, calendar)}"
            + (f", due {show_time(first.due_at, calendar)}" if first.due_at else "")
        )
        if first is not None
        else "none"
    )
    values = {
        "ticket_count": len(tickets),
        "organization_count": len(orgs),
        "highest_severity": highest or "not set",
        "oldest_promise": oldest,
    }
    if private:
        names = sorted({(o.name, o.tier or "") for o in orgs.values()})
        customers = "\n".join(f"- {name}" + (f" ({tier})" if tier else "") for name, tier in names)
        return templates["demand"].render(
            escape_values({**values, "customers": ""}, fmt) | {"customers": _escape_lines(customers, fmt)}
        )
    return templates["demand_public"].render(escape_values(values, fmt))


def _oldest_open(promises: Sequence[Promise]) -> Promise | None:
    """The oldest promise still open or due (the first of equals in the order given): the one
    the demand comment shows."""
    active = sorted(
        (p for p in promises if p.state in (PromiseState.OPEN, PromiseState.DUE)), key=lambda p: p.created_at
    )
    return active[0] if active else None


def demand_inputs(
    issue: Issue,
    tickets: Sequence[DemandTicket],
    promises: Sequence[Promise],
    *,
    private: bool,
    templates: Mapping[str, Template],
    calendar: BusinessCalendar = ALWAYS,
    fmt: str = "markdown",
) -> str:
    """A digest of everything :func:`demand_body` reads of these same arguments: while it
    stays the same, so does the text, which then need not be built again.

    Kept in step with :func:`demand_body`, and wider where that is cheap: each ticket's
    organization, severity and rank in the order given (the order picks among equal
    ranks), the template, the calendar and the format; of the promises, the one the text
    shows. Deterministic across processes (no ``hash()`` of text)."""
    template = templates.get("demand" if private else "demand_public")
    parts = (
        issue.ref.connector,
        issue.ref.id,
        private,
        fmt,
        template.text if template is not None else None,
        tuple(
            (f.name, sorted(v) if isinstance(v, frozenset) else v)
            for f in fields(calendar)
            for v in (getattr(calendar, f.name),)
        ),
        tuple(
            (
                (o.id, o.name, o.tier) if (o := dt.ticket.organization) is not None else None,
                dt.severity,
                dt.severity_rank,
            )
            for dt in tickets
        ),
        (first.id, first.what, first.created_at, first.due_at) if (first := _oldest_open(promises)) else None,
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


def _escape_lines(text: str, fmt: str) -> str:
    return "\n".join(f"- {escape(line[2:], fmt)}" for line in text.splitlines())


def plan_demand(issue: Issue, body: str, version: int, *, private: bool) -> Action:
    """Keep the issue's demand comment current: one comment, edited in place.

    ``version`` counts the bodies written; a changed body gets the next one,
    so going back to an earlier text is still a new write.
    """
    digest = hashlib.sha256(body.encode()).hexdigest()[:12]
    key = idempotency_key("demand", issue.ref, version, digest)
    return UpsertComment(DEMAND_SLOT, body, private).action(
        key, issue.ref.connector, issue.ref.id, issue_group(issue.ref)
    )
