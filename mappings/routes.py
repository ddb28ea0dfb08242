"""The runtime side of the admins' mappings: the objects the engine uses.

:class:`Route` (which tickets go where, the escalation flag, the acceptance
criteria, states, templates and promises a route uses) and :class:`Mappings`
(all routes and the sections that apply to every route), plus the builtin
templates and the catalogue of the values each template is rendered with.
Pure: built by :mod:`mappings.files` from the admin's files, never reading any.

Routes are tried in order (files by name, then as written); the first whose
``match`` holds wins, and a route without ``match`` takes every ticket.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from mappings import acceptance as acc
from mappings.calendar import BusinessCalendar
from mappings.conversation import OFF, ConversationRule
from mappings.promises import PromiseRule
from mappings.stages import StateMap, default_state_map
from mappings.templates import DEFAULTS, Template
from syncd.records import Issue, Stage, Ticket

# -- templates: what each note is given ------------------------------------------------------------

_ISSUE = ("issue_key", "issue_title", "issue_url", "state_name", "owner")
_TICKET_SIDE = ("helpdesk_name", "ticket_key", "ticket_subject", "organization", "ticket_status")
_PUBLIC = ("opaque_ref", "ticket_count")

# The placeholders each template is rendered with. A template may use any of
# its own; one it is not given is a configuration error, never a blank.
TEMPLATE_VALUES: dict[str, frozenset[str]] = {
    name: frozenset(values)
    for name, values in {
        "linked": _ISSUE,
        "state_changed": _ISSUE + ("old_state",),
        "owner_changed": _ISSUE + ("old_owner",),
        "closed_waiting": _ISSUE + ("old_state", "waiting"),
        "resolved": _ISSUE + ("old_state", "summary"),
        "unlinked": ("issue_key", "issue_title"),
        "issue_gone": ("issue_key", "issue_title"),
        "issue_gone_ref": ("issue_key",),
        "issue_out_of_reach": ("issue_key", "issue_title", "issue_url", "place"),
        "attachment_title": _TICKET_SIDE,
        "attachment_subtitle": _TICKET_SIDE,
        "attachment_title_public": _PUBLIC,
        "attachment_subtitle_public": _PUBLIC,
        # The handoff.
        "needs_context": ("ticket_key", "route", "missing", "missing_count"),
        "handoff_title": ("ticket_key", "ticket_subject", "organization", "severity", "route"),
        "handoff_body": (
            "ticket_key",
            "ticket_url",
            "ticket_subject",
            "organization",
            "tier",
            "severity",
            "agent",
            "customer_count",
            "internal_note",
            "promise",
            "route",
        ),
        # On a public tracker nothing that identifies a customer is given.
        "handoff_title_public": ("opaque_ref", "severity", "route"),
        "handoff_body_public": ("opaque_ref", "severity", "customer_count", "promise", "route"),
        # The tracker refused to create the handoff's issue: the agent is told.
        "handoff_failed": ("ticket_key", "route", "tracker", "place", "reason"),
        "promise_due": _ISSUE + ("summary", "promise", "due"),
        "promise_broken": ("ticket_key", "promise", "due"),
        "owner_gap_ticket": ("ticket_key", "stage"),
        "owner_gap_issue": ("issue_key", "issue_title", "unassigned_since", "triage_sla"),
        "follow_up_ticket": ("ticket_key", "issue_key", "summary"),
        "demand": ("ticket_count", "organization_count", "highest_severity", "oldest_promise", "customers"),
        "demand_public": ("ticket_count", "organization_count", "highest_severity", "oldest_promise"),
    }.items()
}

# The builtin templates of a follow-up's own work (the handoff, promises, owner gaps, demand),
# beside the link and state notes of mappings.templates.DEFAULTS.
FOLLOW_UP_TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            "needs_context",
            "This ticket is flagged for product ({route}) but cannot be handed over yet. "
            "Please add:\n{missing}\nsyncd will check again when the ticket changes.",
        ),
        Template("handoff_title", "{ticket_subject}"),
        Template(
            "handoff_body",
            "Escalated from support ticket {ticket_key}: {ticket_url}\n"
            "Customer: {organization} ({tier}) · Severity: {severity} · "
            "Customers asking: {customer_count}\n"
            "Support owner: {agent}\n\n{internal_note}\n\nPromised to the customer: {promise}",
        ),
        Template("handoff_title_public", "Customer report {opaque_ref}"),
        Template(
            "handoff_body_public",
            "Escalated from support ({opaque_ref}) · Severity: {severity} · "
            "Customers asking: {customer_count}\nPromised: {promise}",
        ),
        Template(
            "handoff_failed",
            "This ticket could not be handed over to product: {tracker} refused to create the issue "
            "in {place} ({reason}). Nothing reached product yet. An admin needs to fix the handoff "
            "route ({route}); the handoff is then made again.",
        ),
        Template(
            "promise_due",
            "{issue_key} is {state_name}:\n{summary}\n"
            "The customer was promised {promise}. Tell them what changed by {due}.",
        ),
        Template("promise_broken", "The promise to the customer ({promise}) was due {due} and was not kept."),
        Template(
            "owner_gap_ticket", "This follow-up ({stage}) has no assigned agent: assign one so the customer hears back."
        ),
        Template(
            "owner_gap_issue",
            "{issue_key} has had no assignee since {unassigned_since} (triage SLA "
            "{triage_sla}): ask the team to pick an owner.",
        ),
        Template(
            "follow_up_ticket",
            "Follow-up to {ticket_key}, which is closed and could not be reopened: {issue_key} is done.",
        ),
        Template(
            "demand",
            "Support demand: {ticket_count} ticket(s) from {organization_count} organisation(s); "
            "highest severity {highest_severity}; oldest open promise {oldest_promise}.\n{customers}",
        ),
        Template(
            "demand_public",
            "Support demand: {ticket_count} ticket(s) from {organization_count} "
            "organisation(s); highest severity {highest_severity}; oldest open promise "
            "{oldest_promise}.",
        ),
    )
}


def template_values(name: str) -> frozenset[str] | None:
    """The placeholders ``name`` is rendered with; None for an unknown template."""
    if name in TEMPLATE_VALUES:
        return TEMPLATE_VALUES[name]
    if name in DEFAULTS:  # a built-in added after this catalogue: its own placeholders are given
        return DEFAULTS[name].placeholders
    return None


def builtin_templates() -> dict[str, Template]:
    return {**DEFAULTS, **FOLLOW_UP_TEMPLATES}


# -- what the engine uses ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    tracker: str  # a tracker connector's name in syncd.toml
    team: str  # where on that tracker issues go; its form is the connector's (TrackerKind.team_pattern)
    tags: tuple[str, ...] = ()  # match: any of these tags
    groups: tuple[str, ...] = ()
    forms: tuple[str, ...] = ()
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # field id -> accepted values
    escalate_tag: str | None = None
    escalate_field: str | None = None
    escalate_values: tuple[str, ...] = ()  # empty: any value flags
    criteria: tuple[acc.Criterion, ...] = ()
    states: StateMap | None = None
    templates: Mapping[str, Template] = field(default_factory=builtin_templates)
    promises: PromiseRule | None = None
    severity_field: str | None = None
    severity_order: tuple[str, ...] = ()  # most severe first
    labels: tuple[str, ...] = ()  # labels for the issues an escalation creates (existing ones only)
    conversation: ConversationRule = OFF  # which comments cross between tickets and issues (off by default)

    @property
    def catch_all(self) -> bool:
        return not (self.tags or self.groups or self.forms or self.fields)

    def matches(self, ticket: Ticket) -> bool:
        """Every condition given holds (tags: any of them; fields: each one)."""
        if self.tags and not set(self.tags) & set(ticket.tags):
            return False
        if self.groups and ticket.group_id not in self.groups:
            return False
        if self.forms and ticket.form_id not in self.forms:
            return False
        return all(field_holds(ticket.fields.get(fid), values) for fid, values in self.fields.items())

    def is_flagged(self, ticket: Ticket) -> bool:
        """The ticket carries this route's escalation flag."""
        if self.escalate_tag:
            return self.escalate_tag in ticket.tags
        if self.escalate_field:
            return field_holds(ticket.fields.get(self.escalate_field), self.escalate_values)
        return False

    def acceptance(self, ticket: Ticket, notes: Sequence[str] = ()) -> acc.AcceptanceResult:
        return acc.evaluate(self.criteria, ticket, notes)

    def issue_stage(self, issue: Issue, kind: str) -> tuple[Stage, str]:
        """The stage a linked issue stands for, and the value agents see."""
        return (self.states or default_state_map(kind)).issue_stage(issue)

    def severity(self, ticket: Ticket) -> str | None:
        if not self.severity_field:
            return None
        value = ticket.fields.get(self.severity_field)
        return str(value) if value not in (None, "") else None


@dataclass(frozen=True)
class Mappings:
    routes: tuple[Route, ...] = ()
    link_trackers: tuple[str, ...] | None = None  # None: every tracker's patterns
    link_fields: tuple[str, ...] = ()
    states: Mapping[str, StateMap] = field(default_factory=dict)
    templates: Mapping[str, Mapping[str, Template]] = field(default_factory=dict)  # set -> name -> template
    promises: Mapping[str, PromiseRule] = field(default_factory=dict)
    calendars: Mapping[str, BusinessCalendar] = field(default_factory=dict)
    stage_field: str | None = None  # helpdesk custom field that shows the stage
    stage_tag_prefix: str | None = None  # the stage is also shown as one tag <prefix><stage>
    missing_field: str | None = None  # helpdesk text field kept current with what a flagged ticket lacks
    broken_tag: str = "syncd_promise_broken"  # added to a ticket whose promise was broken
    files: tuple[Path, ...] = ()
    origins: Mapping[str, str] = field(default_factory=dict)  # "routes.bugs" -> "rules/routes.toml:3"

    @property
    def shows_stages(self) -> bool:
        """Whether stage changes are written to the helpdesk at all."""
        return bool(self.stage_field or self.stage_tag_prefix)

    # Each ticket's route, by the ticket object (records are frozen: a ticket's route never
    # changes), while that object lives: a page asks it of each ticket for each of its notes,
    # stages and issues. Holds no ticket: an entry leaves with its ticket.
    _routes: dict[int, tuple[weakref.ref[Ticket], Route | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def route_for(self, ticket: Ticket) -> Route | None:
        """The first route whose ``match`` holds for ``ticket`` (None: no route takes it)."""
        known = self._routes.get(id(ticket))
        if known is not None and known[0]() is ticket:
            return known[1]
        route = next((r for r in self.routes if r.matches(ticket)), None)
        ident, routes = id(ticket), self._routes

        def gone(_: object) -> None:
            routes.pop(ident, None)

        routes[ident] = (weakref.ref(ticket, gone), route)
        return route

    def route(self, name: str) -> Route | None:
        return next((r for r in self.routes if r.name == name), None)

    def linking(self, patterns: Mapping[str, Any]) -> dict[str, Any]:
        """The trackers' link patterns that apply to tickets ([links] trackers; default all)."""
        if self.link_trackers is None:
            return dict(patterns)
        return {name: p for name, p in patterns.items() if name in self.link_trackers}

    def scanned_fields(self, connector_fields: Sequence[str]) -> tuple[str, ...]:
        """The ticket fields scanned for issue keys: the helpdesk connector's, then [links] fields."""
        return tuple(dict.fromkeys((*connector_fields, *self.link_fields)))

    def mirrors_to_tickets(self, tracker: str) -> bool:
        """Whether any route to ``tracker`` mirrors its issues' comments to tickets."""
        return any(r.tracker == tracker and r.conversation.to_ticket for r in self.routes)

    def default_templates(self) -> dict[str, Template]:
        return {**builtin_templates(), **self.templates.get("default", {})}


# -- the file schema -----------------------------------------------------------------------------------


def scalar_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def field_holds(value: Any, accepted: Sequence[str]) -> bool:
    if value is None or value == "" or value is False or value == []:
        return False
    if not accepted:
        return True
    held = value if isinstance(value, (list, tuple)) else [value]
    return any(scalar_text(v) in accepted for v in held)


__all__ = [
    "FOLLOW_UP_TEMPLATES",
    "Mappings",
    "Route",
    "TEMPLATE_VALUES",
    "builtin_templates",
    "field_holds",
    "scalar_text",
    "template_values",
]
