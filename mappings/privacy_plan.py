"""Planning what happens when a tracker's place (a GitHub repository) turns public.

Pure: the engine gathers what syncd wrote there (the outbox's delivered
writes) and the linked tickets; these functions return the outbox actions.

- :func:`plan_make_opaque`: ONE rewrite per issue syncd wrote to, carrying
  what the tracker cannot compose itself (the demand comment's opaque text,
  the drafts of an issue syncd created). Its key is per (issue, place, the
  moment syncd learned the change): planning it twice is refused by the
  outbox; a place that turns public a second time is a new rewrite.
- :func:`plan_kept_notes`: an internal note on each linked ticket naming
  the texts the tracker could not rewrite because someone edited them.

The reverse (public → private) needs no rewrite: nothing written while the
place was public names a customer.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from mappings.escaping import escape, escape_values
from mappings.planner import ticket_group
from mappings.templates import Template
from syncd.records import Issue, Ref, idempotency_key, parse_time, utc
from syncd.writes import (
    ISSUE_ATTACH,
    ISSUE_COMMENT,
    ISSUE_OPAQUE,
    ISSUE_UPSERT,
    Action,
    MakeOpaque,
    TicketUpdate,
    kind_of,
)

# Writes that leave syncd's text on an issue (a rewrite is one too: it records what it wrote).
ISSUE_WRITES = (ISSUE_ATTACH, ISSUE_COMMENT, ISSUE_UPSERT, ISSUE_OPAQUE)


def opaque_group(issue: Ref) -> str:
    """Rewrites go in a queue of their own: a write refused for naming a customer
    (dead, holding the issue's queue) must not hold back the rewrite."""
    return f"privacy:{issue}"


def plan_make_opaque(
    issue: Issue,
    place: str,
    epoch: str,
    *,
    slots: Mapping[str, str] | None = None,
    created: Mapping[str, Any] | None = None,
) -> Action:
    """Rewrite everything syncd wrote on ``issue`` to the form fit for a public place."""
    key = idempotency_key("make_opaque", issue.ref, place.lower(), epoch)
    write = MakeOpaque(place, issue.key, dict(slots or {}), dict(created) if created else None)
    return write.action(key, issue.ref.connector, issue.ref.id, opaque_group(issue.ref))


def written_comments(rows: Iterable[Any]) -> dict[str, str]:
    """Comment id → the ``updated_at`` the tracker answered to syncd's LAST write of it.

    ``rows``: delivered issue writes, oldest first (an outbox row's ``result``
    holds ``id`` and ``updated_at``; a rewrite's holds ``comments``)."""
    out: dict[str, str] = {}
    for row in rows:
        result = row.result or {}
        if kind_of(row.op) is MakeOpaque:
            out.update({str(k): str(v) for k, v in (result.get("comments") or {}).items()})
        elif result.get("id") and result.get("updated_at"):
            out[str(result["id"])] = str(result["updated_at"])
    return out


PRIVACY_KEPT = Template(
    "privacy_kept",
    "{issue_key} is now publicly visible. syncd rewrote what it had written there without customer "
    "details, except:\n{texts}\nSomeone edited these after syncd wrote them, so syncd left them as they are. "
    "Please check them for customer details.",
)


def kept_line(kept: Mapping[str, Any], fmt: str) -> str:
    who = kept.get("edited_by") or "someone other than syncd (the tracker does not say who)"
    at = parse_time(kept["edited_at"]) if kept.get("edited_at") else None
    when = f" on {utc(at).strftime('%Y-%m-%d at %H:%M UTC')}" if at else ""
    return (
        f"- {escape(str(kept.get('what')), fmt)}, edited by {escape(str(who), fmt)}{escape(when, fmt)}: "
        f"{escape(str(kept.get('url')), fmt)}"
    )


def plan_kept_notes(
    issue_key: str,
    tickets: Sequence[Ref],
    kept: Sequence[Mapping[str, Any]],
    rewrite_key: str,
    *,
    note_format: str = "plain",
    template: Template | None = None,
) -> list[Action]:
    """One internal note per linked ticket: the texts on ``issue_key`` that could not be made private."""
    if not kept:
        return []
    values = escape_values({"issue_key": issue_key}, note_format)
    values["texts"] = "\n".join(kept_line(k, note_format) for k in kept)
    note = (template or PRIVACY_KEPT).render(values)
    return [
        TicketUpdate(note=note).action(
            idempotency_key("privacy_kept", ticket, rewrite_key), ticket.connector, ticket.id, ticket_group(ticket)
        )
        for ticket in dict.fromkeys(tickets)
    ]
