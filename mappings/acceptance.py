"""Handoff acceptance criteria: is the ticket ready to go to product?

Each criterion is one declarative rule with a human label; the labels of the
rules that fail are exactly what the "missing" note lists. Rules:

* ``organization``: the ticket's organisation is known;
* ``priority``: the ticket has a priority;
* ``field``: a custom field is set (optionally to one of ``values``);
* ``tags``: the ticket carries one of these tags;
* ``text``: a pattern (case-insensitive, ``^``/``$`` per line) matches the
  description or one of the agent's notes given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from mappings.templates import Template
from syncd.records import Ticket


@dataclass(frozen=True)
class Criterion:
    label: str  # what the agent reads in the "missing" note: "steps to reproduce"
    organization: bool = False
    priority: bool = False
    field: str | None = None
    values: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    text: re.Pattern[str] | None = None

    def met(self, ticket: Ticket, notes: Sequence[str] = ()) -> bool:
        if self.organization:
            return ticket.organization is not None
        if self.priority:
            return bool(ticket.priority)
        if self.field is not None:
            value = ticket.fields.get(self.field)
            if not _is_set(value):
                return False
            if not self.values:
                return True
            held = value if isinstance(value, (list, tuple)) else [value]
            return any(str(v) in self.values for v in held)
        if self.tags:
            return bool(set(self.tags) & set(ticket.tags))
        if self.text is not None:
            return any(self.text.search(t or "") for t in (ticket.description, *notes))
        raise ValueError(f"criterion {self.label!r} has no rule")


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
