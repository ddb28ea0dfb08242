"""Planning: observed changes in, outbox actions and events out.

Pure functions. Every action's key is derived from (link, transition) so
that planning the same input twice yields the same keys; the outbox refuses
a key it already holds, which is what makes replaying a page harmless.

Every outside value (titles, subjects, names, states) goes through
:mod:`mappings.escaping` for the format it lands in: plain text for the
helpdesk's notes and fields, the tracker's ``attachment_formats`` entry for
what is shown on an issue.

Ticket writes that say the same thing to many tickets (an issue moved, and
30 tickets wait on it) share a ``marker``: the payloads are then equal and
delivery can send them as one bulk update where the helpdesk allows it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from mappings.escaping import escape, escape_values
from mappings.routes import Mappings
from mappings.templates import DEFAULTS, Template
from syncd.records import Event, Issue, Link, Ref, Ticket, format_time, idempotency_key
from syncd.writes import Action, AttachTicket, TicketUpdate


@dataclass(frozen=True)
class PlanSettings:
    helpdesk: str
    helpdesk_name: str = "Helpdesk"  # the helpdesk connector's display_name (set by the app)
    linked_tag: str = "syncd_linked"
    status_field: str | None = None  # custom field id that shows the linked issue status
    reopen_statuses: tuple[str, ...] = ("solved", "pending")
    templates: Mapping[str, Template] = field(default_factory=lambda: dict(DEFAULTS))
    note_format: str = "plain"  # how the helpdesk reads notes (see mappings.escaping)
    # Tracker connector name -> format of the ticket title shown on its issues; default plain.
    attachment_formats: Mapping[str, str] = field(default_factory=dict)
    # Links found on the first sync, made before syncd watched: "announce" (a note on the
    # ticket, the ticket shown on the issue) or "adopt" (tag and status field only).
    existing_links: str = "announce"
    # The admin's mapping files: a ticket's route chooses the templates of its notes and the
    # state map whose ``show`` text agents read in the status field. None: the built-in texts.
    mappings: Mappings | None = None
    tracker_kinds: Mapping[str, str] = field(default_factory=dict)  # tracker connector name -> kind
    # Trackers whose issue keys could be another tracker's too (both follow an ENG project or
    # team, see mappings.links.shared_key_trackers) -> their display name: notes about their
    # issues say "ENG-89 in Jira", so that agents can tell it from a Linear ENG-89.
    qualified: Mapping[str, str] = field(default_factory=dict)

    def templates_for(self, ticket: Ticket) -> Mapping[str, Template]:
        """The note templates for ``ticket``: its route's (built-in, [templates.default],
        then the route's own set), else the built-ins under [templates.default]."""
        if self.mappings is None:
            return self.templates
        route = self.mappings.route_for(ticket)
        if route is not None:
            return route.templates
        return {**self.templates, **self.mappings.templates.get("default", {})}

    def issue_key(self, issue: Issue) -> str:
        """An issue's key as notes name it: with its tracker where another could share the key."""
        name = self.qualified.get(issue.ref.connector)
        return f"{issue.key} in {name}" if name else issue.key

    def shown_state(self, ticket: Ticket, issue: Issue) -> str | None:
        """The ``show`` text of the rule of the ticket's route's state map that ``issue``
        matches (the admin's words for the state), None where no rule applies."""
        if self.mappings is None:
            return None
        route = self.mappings.route_for(ticket)
        state_map = route.states if route is not None else None
        if state_map is None or state_map.kind != self.tracker_kinds.get(issue.ref.connector):
            return None
        return state_map.shown(issue, escape)


@dataclass
class Plan:
    links: list[Link] = field(default_factory=list)
    ended: list[tuple[Link, str]] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def extend(self, other: "Plan") -> "Plan":
        self.links += other.links
        self.ended += other.ended
        self.actions += other.actions
        self.events += other.events
        return self

    def __bool__(self) -> bool:
        return bool(self.links or self.ended or self.actions or self.events)


def ticket_group(ref: Ref) -> str:
    return f"ticket:{ref}"


def issue_group(ref: Ref) -> str:
    return f"issue:{ref}"


def opaque_ref(ticket: Ref) -> str:
    """A reference to a ticket that says nothing about the customer."""
    return "T-" + hashlib.sha256(str(ticket).encode()).hexdigest()[:10]


def status_field_value(
    issues: Iterable[Issue], shown: Mapping[Ref, str] | None = None, keys: Mapping[Ref, str] | None = None
) -> str:
    """What agents read in the ticket's status field: one entry per linked issue.

    ``shown``: the admin's ``show`` text for an issue (its state map rule), used
    as written after the key ("ENG-6: Fixed: Done"), or alone where it names
    the key itself; without one, the tracker's state name and the owner.
    ``keys``: the key as notes name it (with the tracker, where keys could clash)."""
    shown = shown or {}
    keys = keys or {}
    parts = []
    for issue in sorted(issues, key=lambda i: i.key):
        key = escape(keys.get(issue.ref, issue.key))
        text = shown.get(issue.ref)
        if text is not None:
            parts.append(text if issue.key in text else f"{key}: {text}")
            continue
        owner = f" ({escape(issue.assignee)})" if issue.assignee else ""
        parts.append(f"{key}: {escape(issue.state_name)}{owner}")
    return "; ".join(parts)


def _issue_values(issue: Issue, settings: PlanSettings | None = None) -> dict[str, object]:
    return {
        "issue_key": settings.issue_key(issue) if settings else issue.key,
        "issue_title": issue.title,
        "issue_url": issue.url,
        "state_name": issue.state_name,
        "owner": issue.assignee or "unassigned",
    }


def _fields(settings: PlanSettings, issues: Iterable[Issue], ticket: Ticket | None = None) -> dict[str, str]:
    if not settings.status_field:
        return {}
    issues = list(issues)
    shown: dict[Ref, str] = {}
    if ticket is not None:
        for issue in issues:
            text = settings.shown_state(ticket, issue)
            if text is not None:
                shown[issue.ref] = text
    keys = {i.ref: settings.issue_key(i) for i in issues}
    return {settings.status_field: status_field_value(issues, shown, keys)}


def link_key(ticket: Ref, issue: Ref, epoch: str = "") -> str:
    """The key of a link's note on the ticket (its marker there)."""
    return idempotency_key("link", ticket, issue, epoch)


def attach_key(ticket: Ref, issue: Ref) -> str:
    """The key of the ticket shown on the issue (its marker there, where the tracker keeps one)."""
    return idempotency_key("attach", ticket, issue)


def plan_link(
    link: Link,
    ticket: Ticket,
    issue: Issue,
    linked_issues: Iterable[Issue],
    settings: PlanSettings,
    *,
    ticket_count: int = 1,
    epoch: str = "",
    quiet: bool = False,
) -> Plan:
    """A new link: a note and tag on the ticket, the ticket shown on the issue.

    ``linked_issues`` are all issues the ticket is linked to, this one included.
    ``epoch`` tells a re-link after an unlink apart from the first link (the
    time the earlier link ended), so that its note is written again.
    ``quiet`` adopts a link that existed before syncd watched: the ticket
    gets the tag and status field only (no note) and the issue is not
    written to.
    """
    t = settings.templates_for(ticket)
    issues = {i.ref: i for i in linked_issues}
    issues[issue.ref] = issue
    key = link_key(link.ticket, link.issue, epoch)
    fields = _fields(settings, issues.values(), ticket)
    if quiet:
        write = TicketUpdate(add_tags=(settings.linked_tag,), fields=fields)
        actions = [write.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref))]
    else:
        note = t["linked"].render(escape_values(_issue_values(issue, settings), settings.note_format))
        write = TicketUpdate(note=note, add_tags=(settings.linked_tag,), fields=fields)
        actions = [write.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref))]
        actions.append(_attach_action(ticket, issue, settings, ticket_count))
    event = Event(
        "linked",
        f"{ticket.key} linked to {issue.key} ({link.origin}" + (", adopted quietly)" if quiet else ")"),
        ticket.ref,
        issue.ref,
        {"origin": link.origin, "issue_key": issue.key, "state": issue.state_name, "adopted": quiet},
    )
    return Plan(links=[link], actions=actions, events=[event])


def _attach_action(ticket: Ticket, issue: Issue, settings: PlanSettings, ticket_count: int) -> Action:
    t = settings.templates_for(ticket)
    fmt = settings.attachment_formats.get(issue.ref.connector, "plain")
    if issue.public:
        values = escape_values({"ticket_count": ticket_count}, fmt)
        # syncd's own "T-<hex>": safe in every format, written as it is so people can search for it.
        values["opaque_ref"] = opaque_ref(ticket.ref)
        title = t["attachment_title_public"].render(values)
        subtitle = t["attachment_subtitle_public"].render(values)
    else:
        values = {
            "helpdesk_name": settings.helpdesk_name,
            "ticket_key": ticket.key,
            "ticket_subject": ticket.subject,
            "organization": ticket.organization.name if ticket.organization else "no organisation",
            "ticket_status": ticket.status,
        }
        values = escape_values(values, fmt)
        title = t["attachment_title"].render(values)
        subtitle = t["attachment_subtitle"].render(values)
    key = attach_key(ticket.ref, issue.ref)
    write = AttachTicket(ticket.url, title, subtitle, issue.public)
    return write.action(key, issue.ref.connector, issue.ref.id, issue_group(issue.ref))


@dataclass(frozen=True)
class LinkedTicket:
    """A ticket affected by an issue change, with every issue it is linked to."""

    ticket: Ticket
    issues: tuple[Issue, ...]  # current snapshots, the changed issue included


def state_changed(issue: Issue, previous: Issue | None) -> bool:
    return previous is not None and (previous.state != issue.state or previous.state_name != issue.state_name)


def shown_fields_changed(issue: Issue, previous: Issue | None) -> bool:
    """Whether what the ticket's status field shows (key, owner) changed."""
    return previous is not None and (previous.assignee != issue.assignee or previous.key != issue.key)


def plan_issue_update(
    issue: Issue, previous: Issue | None, tickets: Iterable[LinkedTicket], settings: PlanSettings
) -> Plan:
    """An issue changed: tell every linked ticket what it needs to know."""
    plan = Plan()
    moved = state_changed(issue, previous)
    if previous is not None and previous.key != issue.key:
        plan.events.append(
            Event(
                "issue_moved",
                f"{previous.key} is now {issue.key}",
                None,
                issue.ref,
                {"old_key": previous.key, "new_key": issue.key},
            )
        )
    if not moved and not shown_fields_changed(issue, previous):
        return plan
    assert previous is not None
    transition = (
        "state",
        issue.ref,
        previous.state_name,
        issue.state_name,
        issue.assignee,
        issue.key,
        format_time(issue.updated_at),
    )
    # The state's name did not change (GitHub: someone was assigned, which starts the work): say what did.
    only_owner = moved and previous.state_name == issue.state_name
    if moved:
        if not only_owner:
            what = f"{issue.key} moved from {previous.state_name} to {issue.state_name}"
        elif previous.assignee != issue.assignee:
            what = f"{issue.key} ({issue.state_name}) is now with {issue.assignee or 'nobody'}"
        else:
            what = f"{issue.key} ({issue.state_name}) is now {issue.state.value}"
        plan.events.append(
            Event(
                "issue_state",
                what,
                None,
                issue.ref,
                {"from": previous.state_name, "to": issue.state_name, "category": issue.state.value},
            )
        )
    marker = idempotency_key(*transition)
    fmt = settings.note_format

    def line(i: Issue) -> str:
        return f"- {escape(settings.issue_key(i), fmt)}: {escape(i.state_name, fmt)}"

    # What the notes say of the issue: the same for each of its tickets, escaped once.
    values = (
        escape_values(
            _issue_values(issue, settings)
            | {"old_state": previous.state_name, "old_owner": previous.assignee or "unassigned"},
            fmt,
        )
        if moved
        else {}
    )
    # The status field of tickets with the same route and issues (an issue's tickets often share
    # them all): worked out once. The objects are the call's own, alive until it returns.
    shown_fields: dict[tuple[int, ...], dict[str, str]] = {}
    routes = settings.mappings
    for linked in tickets:
        ticket = linked.ticket
        t = settings.templates_for(ticket)
        others = [i for i in linked.issues if i.ref != issue.ref]
        all_issues = others + [issue]
        same = (id(routes.route_for(ticket)) if routes is not None else 0, *map(id, all_issues))
        known = shown_fields.get(same)
        if known is None:
            known = shown_fields[same] = _fields(settings, all_issues, ticket)
        fields = dict(known)  # each write its own
        note: str | None = None
        status: str | None = None
        status_from: tuple[str, ...] = ()
        kind = "field"
        if moved:
            if only_owner and issue.state.is_closed == previous.state.is_closed:
                if previous.assignee != issue.assignee:
                    note = t["owner_changed"].render(values)
                    kind = "owner_changed"
            elif issue.state.is_closed and all(i.state.is_closed for i in others):
                summary = "\n".join(line(i) for i in sorted(all_issues, key=lambda i: i.key))
                note = t["resolved"].render(values | {"summary": summary})
                if settings.reopen_statuses:
                    # Conditional on the ticket's status when the write lands, not
                    # on our snapshot of it, which may be a poll behind.
                    status, status_from = "open", tuple(settings.reopen_statuses)
                kind = "resolved"
            elif issue.state.is_closed:
                waiting = "\n".join(line(i) for i in sorted(others, key=lambda i: i.key) if not i.state.is_closed)
                note = t["closed_waiting"].render(values | {"waiting": waiting})
                kind = "closed_waiting"
            else:
                note = t["state_changed"].render(values)
                kind = "state_changed"
        write = TicketUpdate(note=note, fields=fields, status=status, status_from=status_from, marker=marker)
        if not write.fields and write.note is None:
            continue
        key = idempotency_key(*transition, ticket.ref)
        plan.actions.append(write.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref)))
        if kind == "resolved":
            plan.events.append(
                Event(
                    "resolved",
                    f"{ticket.key}: every linked issue is closed; follow up due",
                    ticket.ref,
                    issue.ref,
                    {"reopen": write.status == "open"},
                )
            )
    return plan


def plan_unlink(
    link: Link,
    ticket: Ticket,
    issue: Issue | None,
    remaining: Iterable[Issue],
    settings: PlanSettings,
    reason: str,
    *,
    epoch: str = "",
    template_name: str = "unlinked",
) -> Plan:
    """An ended link: say so on the ticket, and drop the tag when nothing is left."""
    remaining = list(remaining)
    values = {
        "issue_key": settings.issue_key(issue) if issue else link.issue.id,
        "issue_title": issue.title if issue else "",
    }
    template = settings.templates_for(ticket)[template_name]
    write = TicketUpdate(
        note=template.render(escape_values(values, settings.note_format)),
        fields=_fields(settings, remaining, ticket),
        remove_tags=() if remaining else (settings.linked_tag,),
    )
    key = idempotency_key("unlink", link.ticket, link.issue, reason, epoch)
    action = write.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref))
    event = Event(
        "unlinked",
        f"{ticket.key} unlinked from {values['issue_key']} ({reason})",
        ticket.ref,
        link.issue,
        {"reason": reason},
    )
    return Plan(ended=[(link, reason)], actions=[action], events=[event])


# -- issues deleted, hidden or moved out of reach ---------------------------------------------

GONE_REASON = "issue deleted or no longer visible"


def plan_issue_gone(
    link: Link,
    ticket: Ticket,
    issue: Issue | None,
    remaining: Iterable[Issue],
    settings: PlanSettings,
    *,
    epoch: str = "",
) -> Plan:
    """The tracker says a linked issue is gone: end the link with the ``issue_gone``
    note, and update the tag and status field as for an unlink."""
    return plan_unlink(link, ticket, issue, remaining, settings, GONE_REASON, epoch=epoch, template_name="issue_gone")


def plan_gone_ref(ticket: Ticket, tracker: str, ref: str, key: str, settings: PlanSettings) -> Plan:
    """A ticket names an issue the tracker says is gone (``ref`` as found, ``key`` as
    shown): one note saying so, never a link. Planned once per (ticket, issue named)."""
    name = settings.qualified.get(tracker)
    key = f"{key} in {name}" if name else key
    note = settings.templates_for(ticket)["issue_gone_ref"].render(
        escape_values({"issue_key": key}, settings.note_format)
    )
    action_key = idempotency_key("gone_ref", ticket.ref, tracker, ref)
    action = TicketUpdate(note=note).action(action_key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref))
    event = Event(
        "unresolved",
        f"{ticket.key} names {key}, which {tracker} says is deleted or not visible",
        ticket.ref,
        None,
        {"tracker": tracker, "ref": ref},
    )
    return Plan(actions=[action], events=[event])


def plan_out_of_reach(issue: Issue, tickets: Iterable[Ticket], settings: PlanSettings) -> Plan:
    """A linked issue moved to a project, team or repository syncd does not follow:
    tell each linked ticket once (per place it moved to). The links stay."""
    plan = Plan()
    values = escape_values(
        _issue_values(issue, settings) | {"place": issue.team or "another place"}, settings.note_format
    )
    for ticket in tickets:
        note = settings.templates_for(ticket)["issue_out_of_reach"].render(values)
        key = idempotency_key("out_of_reach", ticket.ref, issue.ref, issue.team or "")
        plan.actions.append(
            TicketUpdate(note=note).action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref))
        )
        plan.events.append(
            Event(
                "issue_out_of_reach",
                f"{issue.key} moved to {issue.team}, which syncd does not follow; {ticket.key} told",
                ticket.ref,
                issue.ref,
                {"place": issue.team},
            )
        )
    return plan
