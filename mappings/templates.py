"""Note templates with named placeholders.

A template names its placeholders in braces; rendering with a placeholder
missing is an error (a silent blank in a customer-facing note is worse than a
loud failure), and values are inserted as text, never re-read as template.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from typing import Mapping


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Template:
    name: str
    text: str

    @functools.cached_property  # parsed once per template, not per note
    def placeholders(self) -> frozenset[str]:
        return frozenset(f for _, f, _, _ in string.Formatter().parse(self.text) if f)

    def render(self, values: Mapping[str, object]) -> str:
        missing = self.placeholders - set(values)
        if missing:
            raise TemplateError(f"template {self.name!r} needs {', '.join(sorted(missing))}")
        return self.text.format_map({k: _text(v) for k, v in values.items()}).strip()


def _text(value: object) -> str:
    return "—" if value is None or value == "" else str(value)


DEFAULTS: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            "linked",
            "Linked to {issue_key}: {issue_title}\n"
            "State: {state_name} · Owner: {owner}\n"
            "{issue_url}\n"
            "syncd will post here when the issue moves.",
        ),
        Template(
            "state_changed",
            "{issue_key} moved from {old_state} to {state_name} (owner: {owner}).\n{issue_url}",
        ),
        Template(
            "owner_changed",
            "{issue_key} ({state_name}) is now with {owner} (was: {old_owner}).\n{issue_url}",
        ),
        Template(
            "closed_waiting",
            "{issue_key} is {state_name}. Still waiting on:\n{waiting}\n{issue_url}",
        ),
        Template(
            "resolved",
            "{issue_key} is {state_name}. Every linked issue is now closed:\n{summary}\n"
            "Please follow up with the customer and tell them what changed.",
        ),
        Template(
            "unlinked",
            "Unlinked from {issue_key}: {issue_title}. syncd no longer follows it for this ticket.",
        ),
        Template(
            "issue_gone",
            "{issue_key} ({issue_title}) was deleted, or is no longer visible to syncd's account, so this "
            "ticket is no longer linked to it. If the work still matters, link the issue that replaced it.",
        ),
        Template(
            "issue_gone_ref",
            "{issue_key} is deleted, or not visible to syncd's account, so this ticket was not linked to it. "
            "If the work still matters, link the issue that replaced it.",
        ),
        Template(
            "issue_out_of_reach",
            "{issue_key} ({issue_title}) moved to {place}, which syncd does not follow: its changes will no "
            "longer be posted here. The link stays; unlink it, or link the issue where syncd follows it.\n"
            "{issue_url}",
        ),
        Template("attachment_title", "{helpdesk_name} {ticket_key}: {ticket_subject}"),
        Template("attachment_subtitle", "{organization} · {ticket_status}"),
        Template("attachment_title_public", "Support ticket {opaque_ref}"),
        Template("attachment_subtitle_public", "{ticket_count} linked support ticket(s)"),
    )
}
