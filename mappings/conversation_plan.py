"""The conversation mirror: which comments cross between a ticket and its issues, and as what.

Pure: a comment in, the writes it makes out. The engine reads the comments
(a tracker's comment feed, a ticket's new notes), asks these functions, and
commits what they return with the page.

- :func:`plan_remark` — a comment on a linked issue becomes an internal note
  on each linked ticket whose route mirrors to tickets ("<name> on ENG-8:
  ..." with the comment's link); its later edit or deletion a short note.
- :func:`plan_agent_note` — an agent's internal note the route's rule selects
  (a prefix such as ``#eng``, or a tag on the ticket) becomes a comment on
  each linked issue. On a public place only the opaque reference and the
  agent's words go, and only when :func:`privacy_problems` finds nothing;
  otherwise the note is held and the agent told why (a note on the ticket).

What is never mirrored: syncd's own writes (their marker), comments by the
accounts syncd writes with and by the bots the rule lists, comments the
tracker marks private, public replies to the customer, and anything made
before the rule was switched on (``since``: no backfill).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Sequence

from mappings.conversation import DIRECTIONS, OFF, ConversationRule
from mappings.escaping import escape, escape_url
from mappings.planner import Plan, issue_group, opaque_ref, ticket_group
from syncd.records import Comment, Event, Issue, IssueRemark, Ref, Ticket, idempotency_key
from syncd.writes import Action, MirrorComment, MirrorNote


@dataclass(frozen=True)
class Mirrored:
    """What syncd remembers of a tracker comment it mirrored: the text it last showed."""

    digest: str
    deleted: bool = False
    author: str = ""  # who wrote it, and where it was: what a deletion's note says
    url: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"digest": self.digest, "deleted": self.deleted, "author": self.author, "url": self.url}

    @classmethod
    def from_dict(cls, data: object) -> "Mirrored | None":
        if not isinstance(data, dict) or not isinstance(data.get("digest"), str):
            return None
        return cls(data["digest"], bool(data.get("deleted")), str(data.get("author") or ""), str(data.get("url") or ""))

    def gone(self, comment_id: str, issue: Issue, now: datetime) -> IssueRemark:
        """The comment as a deletion: the tracker no longer lists it."""
        return IssueRemark(
            comment_id,
            issue.key,
            "",
            now,
            now,
            issue.ref.id,
            author_name=self.author or None,
            url=self.url,
            deleted=True,
        )


@dataclass(frozen=True)
class MirrorTarget:
    """A linked ticket a comment may reach: the ticket, its route's rule and when that rule was switched on."""

    ticket: Ticket
    rule: ConversationRule
    since: datetime


@dataclass
class RemarkPlan:
    plan: Plan
    mark: Mirrored | None  # what to remember of the comment now (None: unchanged)

    @property
    def actions(self) -> list[Action]:
        return self.plan.actions


def digest(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:16]


def _named(who: Sequence[str], *ids: str | None) -> bool:
    wanted = {w.casefold() for w in who}
    return any(i is not None and i.casefold() in wanted for i in ids)


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def shortened(text: str, max_length: int) -> tuple[str, bool]:
    """``text``, or its first paragraph (cut at ``max_length``) when longer. True: shortened."""
    text = text.strip()
    if len(text) <= max_length:
        return text, False
    first = (_paragraphs(text) or [""])[0]
    if len(first) > max_length:
        first = first[: max_length - 1].rstrip() + "…"
    return first, True


def _inert(text: str, fmt: str) -> str:
    """The words as text for ``fmt``, paragraph by paragraph and line by line (nothing runs, nobody is pinged)."""
    return "\n\n".join(
        "\n".join(escape(line, fmt) for line in para.splitlines() if line.strip()) for para in _paragraphs(text)
    )


def remark_skipped(remark: IssueRemark, rule: ConversationRule, own: Sequence[str]) -> str | None:
    """Why a tracker comment does not cross to tickets under ``rule`` (None: it may)."""
    if not rule.to_ticket:
        return "the route does not mirror comments to tickets"
    if remark.markers:
        return "syncd's own comment"
    if _named(own, remark.author_id, remark.author_name):
        return "written by syncd's account"
    if remark.bot or _named(rule.ignore, remark.author_id, remark.author_name):
        return "written by a bot"
    if remark.private:
        return "private in the tracker"
    if rule.engineers and not _named(rule.engineers, remark.author_id, remark.author_name):
        return "its author is not among the rule's engineers"
    return None


def plan_remark(
    remark: IssueRemark,
    issue: Issue,
    previous: Mirrored | None,
    targets: Sequence[MirrorTarget],
    own: Sequence[str] = (),
    note_format: str = "plain",
) -> RemarkPlan:
    """A comment on ``issue`` (new, edited or deleted) as internal notes on the linked tickets.

    ``previous``: what was mirrored of it before (None: never). ``own``: the
    ids and names syncd writes to the tracker with."""
    name = remark.author_name or remark.author_id or "Someone"
    fmt = note_format
    url = remark.url or issue.url
    now = digest(remark.body)
    if previous is None:
        if remark.deleted:
            return RemarkPlan(Plan(), None)
        kind, text = "new", remark.body
    elif previous.deleted:
        return RemarkPlan(Plan(), None)
    elif remark.deleted:
        kind, text = "deleted", ""
    elif previous.digest != now:
        kind, text = now, remark.body
    else:
        return RemarkPlan(Plan(), None)
    plan = Plan()
    for target in targets:
        rule, ticket = target.rule, target.ticket
        if remark_skipped(remark, rule, own) is not None or not ticket.can_update:
            continue
        if previous is None and remark.created_at < target.since:
            continue  # made before the rule was on: no backfill
        if kind == "deleted":
            note = f"{escape(name, fmt)} deleted their comment on {escape(issue.key, fmt)}: {escape_url(url, fmt)}"
        else:
            words, cut = shortened(text, rule.max_length)
            what = "on" if kind == "new" else "edited their comment on"
            more = f"\n(more on {escape(issue.key, fmt)})" if cut else ""
            head = f"{escape(name, fmt)} {what} {escape(issue.key, fmt)}:"
            note = f"{head}\n{_inert(words, fmt)}{more}\n{escape_url(url, fmt)}"
        key = idempotency_key("mirror", issue.ref, remark.id, ticket.ref, kind)
        write = MirrorNote(note, source=str(issue.ref), comment=remark.id, issue_key=issue.key, author=name)
        plan.actions.append(write.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref)))
        what = {"new": "comment", "deleted": "deleted comment"}.get(kind, "edited comment")
        plan.events.append(
            Event(
                "conversation",
                f"{name}'s {what} on {issue.key} mirrored to {ticket.key} (source: {url})",
                ticket.ref,
                issue.ref,
                {"source": url, "comment": remark.id, "direction": "to_ticket", "key": key},
            )
        )
    if not plan.actions and previous is None:
        return RemarkPlan(Plan(), None)
    if kind == "deleted":
        assert previous is not None
        return RemarkPlan(plan, replace(previous, deleted=True))
    return RemarkPlan(plan, Mirrored(now, author=name, url=url))


# -- an agent's note to the issues ----------------------------------------------------------

_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
HELD_NOTE = (
    "This note was not copied to {issue_key}, which anyone can read: it contains {problems}. "
    "Write it again without them (start it with {selector}) and it will be copied."
)


def privacy_problems(text: str, ticket: Ticket, ticket_url: str) -> list[str]:
    """What in an agent's words must not reach a public place (empty: nothing).

    The handoff record's rule: no e-mail address, no customer or organisation
    name, no link to the ticket."""
    found: list[str] = []
    folded = text.casefold()
    if _EMAIL_RE.search(text):
        found.append("an e-mail address")
    name = ticket.requester.name if ticket.requester else None
    parts = [p for p in (name or "").split() if len(p) > 2]
    if any(re.search(r"\b" + re.escape(p.casefold()) + r"\b", folded) for p in parts):
        found.append("the customer's name")
    email = ticket.requester.email if ticket.requester else None
    if email and email.casefold() in folded and "an e-mail address" not in found:
        found.append("an e-mail address")
    if ticket.organization and ticket.organization.name and ticket.organization.name.casefold() in folded:
        found.append("the customer's organisation")
    if ticket_url and ticket_url.casefold() in folded:
        found.append("the ticket's link")
    return found


def selected_words(note: Comment, ticket: Ticket, rule: ConversationRule) -> str | None:
    """The words of an agent's note the rule sends to the issues (None: not selected)."""
    if note.public or note.markers or not rule.to_issue:
        return None
    if rule.agents and not _named(rule.agents, note.author_id, note.author_name):
        return None
    body = note.body.strip()
    if rule.prefix and body.casefold().startswith(rule.prefix.casefold()):
        return body[len(rule.prefix) :].strip() or None
    if rule.tag and rule.tag in ticket.tags:
        return body or None
    return None


@dataclass(frozen=True)
class IssueSide:
    """A linked issue an agent's note may reach, with the format its tracker reads."""

    issue: Issue
    text_format: str = "markdown"


def plan_agent_note(
    note: Comment,
    ticket: Ticket,
    rule: ConversationRule,
    since: datetime,
    issues: Sequence[IssueSide],
    agent: str,
    helpdesk_name: str = "the helpdesk",
    note_format: str = "plain",
) -> Plan:
    """An agent's internal note as a comment on each linked issue; held (a note saying why) where it cannot go."""
    words = selected_words(note, ticket, rule)
    if words is None or note.created_at < since:
        return Plan()
    plan = Plan()
    held: list[tuple[Issue, list[str]]] = []
    for side in issues:
        issue, fmt = side.issue, side.text_format
        text, cut = shortened(words, rule.max_length)
        if issue.public:
            problems = privacy_problems(words, ticket, ticket.url)
            if problems:
                held.append((issue, problems))
                continue
            more = "\n\n(shortened: the rest stays in support)" if cut else ""
            body = f"From support ({opaque_ref(ticket.ref)}):\n\n{_inert(text, fmt)}{more}"
        else:
            more = "\n\n(shortened: the whole note is on the ticket)" if cut else ""
            body = (
                f"{escape(agent, fmt)} on {escape(helpdesk_name, fmt)} ticket {escape(ticket.key, fmt)} "
                f"({escape_url(ticket.url, fmt)}):\n\n{_inert(text, fmt)}{more}"
            )
        key = idempotency_key("mirror-note", ticket.ref, note.id, issue.ref)
        write = MirrorComment(body, public=issue.public, ticket=ticket.ref.id, comment=note.id, author=agent)
        plan.actions.append(write.action(key, issue.ref.connector, issue.ref.id, issue_group(issue.ref)))
        form = "its opaque form" if issue.public else "in full"
        plan.events.append(
            Event(
                "conversation",
                f"{agent}'s note on {ticket.key} mirrored to {issue.key}, {form} (source: note {note.id})",
                ticket.ref,
                issue.ref,
                {"source": f"{ticket.url}#note-{note.id}", "comment": note.id, "direction": "to_issue", "key": key},
            )
        )
    for issue, problems in held:
        selector = rule.prefix or "the same words"
        text = HELD_NOTE.format(
            issue_key=escape(issue.key, note_format),
            problems=" and ".join(problems),
            selector=escape(selector, note_format),
        )
        key = idempotency_key("mirror-held", ticket.ref, note.id, issue.ref)
        held_note = MirrorNote(text, source=str(issue.ref), comment=note.id, issue_key=issue.key, held=True)
        plan.actions.append(held_note.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref)))
        plan.events.append(
            Event(
                "conversation",
                f"{agent}'s note on {ticket.key} held, not copied to {issue.key}: it contains {' and '.join(problems)}",
                ticket.ref,
                issue.ref,
                {"source": f"{ticket.url}#note-{note.id}", "comment": note.id, "direction": "held", "key": key},
            )
        )
    return plan


REFUSED_NOTE = (
    "This note was not copied to {issue_key}: it became readable by anyone before syncd sent it, "
    "and the note as written names this ticket and you. Write it again and only your words will be copied."
)


def plan_refused(ticket: Ref, comment: MirrorComment, issue_key: str, note_format: str = "plain") -> Action:
    """The agent told that their note, composed for a private place, was refused there: the place turned public."""
    text = REFUSED_NOTE.format(issue_key=escape(issue_key, note_format))
    key = idempotency_key("mirror-refused", ticket, comment.comment, issue_key)
    write = MirrorNote(text, source=issue_key, comment=comment.comment, issue_key=issue_key, held=True)
    return write.action(key, ticket.connector, ticket.id, ticket_group(ticket))


def remark_ref(tracker: str, comment_id: str) -> Ref:
    """Where the store keeps what was mirrored of a tracker comment (its bookkeeping)."""
    return Ref(tracker, f"comment:{comment_id}")


__all__ = [
    "ConversationRule",
    "DIRECTIONS",
    "IssueSide",
    "MirrorTarget",
    "Mirrored",
    "OFF",
    "RemarkPlan",
    "plan_agent_note",
    "plan_refused",
    "plan_remark",
    "privacy_problems",
    "remark_ref",
    "remark_skipped",
    "selected_words",
    "shortened",
]
