"""Acceptance criteria: each kind of rule, and the note listing what is missing."""

from __future__ import annotations

from datetime import datetime, timezone

from mappings.acceptance import (
    FieldSet,
    HasTag,
    OrganizationKnown,
    PrioritySet,
    TextMatches,
    compile_text,
    evaluate,
    missing_note,
)
from mappings.templates import Template
from syncd.records import Organization, Ref, Ticket

T0 = datetime(2024, 6, 3, tzinfo=timezone.utc)
CRITERIA = (
    OrganizationKnown("organisation"),
    PrioritySet("priority"),
    FieldSet("severity", field="10", values=("sev1", "sev2")),
    FieldSet("product area", field="11"),
    HasTag("platform tag", tags=("ios", "android")),
    TextMatches("steps to reproduce", text=compile_text(r"^\s*steps\b")),
)


def ticket(**kw) -> Ticket:
    return Ticket(Ref("zendesk", "1"), "#1", "u", "s", "open", T0, **kw)


def test_each_rule_kind():
    empty = evaluate(CRITERIA, ticket(fields={"10": "sev4", "11": "  "}))
    assert empty.missing == (
        "organisation",
        "priority",
        "severity",
        "product area",
        "platform tag",
        "steps to reproduce",
    )
    full = ticket(
        organization=Organization("1", "Acme"),
        priority="high",
        fields={"10": "sev2", "11": ["web"]},
        tags=("android",),
        description="Hello\n  Steps: tap upload",
    )
    assert evaluate(CRITERIA, full).met


def test_text_may_come_from_the_agents_notes():
    criteria = (TextMatches("steps to reproduce", text=compile_text(r"^\s*steps\b")),)
    assert not evaluate(criteria, ticket(description="broken")).met
    assert evaluate(criteria, ticket(description="broken"), notes=["STEPS: open it"]).met


def test_missing_note_lists_exactly_what_is_missing():
    result = evaluate(CRITERIA[:3], ticket(priority="low"))
    template = Template("needs_context", "Flagged for {route}; please add:\n{missing}\nThanks.")
    note = missing_note(result, template, {"ticket_key": "#1", "route": "product", "missing_count": 2})
    assert "- organisation\n- severity\n" in note and "priority" not in note
