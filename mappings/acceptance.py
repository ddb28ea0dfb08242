"""Handoff acceptance criteria: is the ticket ready to go to product?

Each criterion is one declarative rule with a human label; the labels of the
rules that fail are exactly what the "missing" note lists. One class per rule,
told apart by ``kind``:

* :class:`OrganizationKnown` (``organization = true``): the ticket's organisation is known;
* :class:`PrioritySet` (``priority = true``): the ticket has a priority;
* :class:`FieldSet` (``field``): a custom field is set (optionally to one of ``values``);
* :class:`HasTag` (``tags``): the ticket carries one of these tags;
* :class:`TextMatches` (``text``): a pattern (case-insensitive, ``^``/``$`` per
  line) matches the description or one of the agent's notes given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

from mappings.templates import Template
from syncd.records import Ticket


@dataclass(frozen=True)
class OrganizationKnown:
    label: str  # what the agent reads in the "missing" note: "the customer's organisation"
    kind: Literal["organization"] = "organization"

    def met(self, ticket: Ticket, notes: Sequence[str] = ()) -> bool:
        return ticket.organization is not None


@dataclass(frozen=True)
class PrioritySet:
    label: str
    kind: Literal["priority"] = "priority"

    def met(self, ticket: Ticket, notes: Sequence[str] = ()) -> bool:
        return bool(ticket.priority)


@dataclass(frozen=True)
class FieldSet:
    label: str
    field: str  # the custom field's id
    values: tuple[str, ...] = ()  # empty: any value will do
    kind: Literal["field"] = "field"

    def met(self, ticket: Ticket, notes: Sequence[str] = ()) -> bool:
        value = ticket.fields.get(self.field)
        if not _is_set(value):
            return False
        if not self.values:
            return True
        held = value if isinstance(value, (list, tuple)) else [value]
        return any(str(v) in self.values for v in held)


@dataclass(frozen=True)
class HasTag:
    label: str
    tags: tuple[str, ...]  # any one of them
    kind: Literal["tags"] = "tags"

    def met(self, ticket: Ticket, notes: Sequence[str] = ()) -> bool:
        return bool(set(self.tags) & set(ticket.tags))


@dataclass(frozen=True)
class TextMatches:
    label: str
    text: re.Pattern[str]  # from compile_text
    kind: Literal["text"] = "text"

    def met(self, ticket: Ticket, notes: Sequence[str] = ()) -> bool:
        return any(self.text.search(t or "") for t in (ticket.description, *notes))


Criterion = OrganizationKnown | PrioritySet | FieldSet | HasTag | TextMatches


def compile_text(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class AcceptanceResult:
    missing: tuple[str, ...]  # labels of the criteria that failed, in their configured order

    @property
    def met(self) -> bool:
        return not self.missing


def evaluate(criteria: Iterable[Criterion], ticket: Ticket, notes: Iterable[str] = ()) -> AcceptanceResult:
    """Check every criterion; ``notes`` are the agent's own notes (not syncd's)."""
    texts = tuple(notes)
    return AcceptanceResult(tuple(c.label for c in criteria if not c.met(ticket, texts)))


def missing_list(result: AcceptanceResult) -> str:
    return "\n".join(f"- {label}" for label in result.missing)


def missing_note(result: AcceptanceResult, template: Template, values: dict[str, object]) -> str:
    """The "needs context" note: the template with ``{missing}`` listing what to add."""
    return template.render({**values, "missing": missing_list(result)})


def _is_set(value: object) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, tuple, dict)):
        return bool(value)
    return True
