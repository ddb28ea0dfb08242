"""Small in-memory connectors that keep the connector contract (connectors.base), for unit tests.

No HTTP is sent and no sandbox runs: each double holds its records in
dicts, lists every change in a feed (the cursor is a position in it), and
writes as the contract says (a note or comment carries ``marker_token(key)``,
so ``find_marker`` and the engine's echo detection find it again). Time is
the test's clock: a double never reads the machine's time.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from connectors.base import ConnectorConfig, Helpdesk, Page, Rejected, Tracker, WriteResult, find_markers, marker_token
from syncd.errors import Gone, NotFound
from syncd.http import HttpClient
from syncd.records import Attachment, Comment, Issue, Ref, StateCategory, Ticket
from syncd.writes import TicketUpdate

T0 = datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc)  # a Monday morning


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**(delta or {"minutes": 1}))


class _Feed:
    """A feed of changes: every new version of a record is appended; the cursor is a position."""

    page_size = 2

    def __init__(self) -> None:
        self.entries: list[Any] = []  # records, or Rejected for a record that could not be read
        self.failures: dict[int, Exception] = {}  # page number of a poll -> what reading it raises

    def pages(self, cursor: str | None) -> Iterator[Page]:
        start = int(cursor or 0)
        if start >= len(self.entries):
            yield Page([], str(start), True)
            return
        for n, at in enumerate(range(start, len(self.entries), self.page_size)):
            if n in self.failures:
                raise self.failures.pop(n)
            chunk = self.entries[at : at + self.page_size]
            end = at + len(chunk)
            yield Page(
                [e for e in chunk if not isinstance(e, Rejected)],
                str(end),
                end >= len(self.entries),
                [e for e in chunk if isinstance(e, Rejected)],
            )


class _InMemory:
    """What both doubles share: no HTTP session is used, the feed is a list."""

    name: str
    feed: _Feed

    def make_http(self) -> HttpClient:
        return HttpClient(self.name, self.config.url, **self.http_options())  # type: ignore[attr-defined]

    def check(self) -> str:
        return f"syncd@{self.name}.invalid"

    def poll(self, cursor: str | None) -> Iterator[Page]:
        return self.feed.pages(cursor)


class MemoryHelpdesk(_InMemory, Helpdesk):
    kind = "memory-helpdesk"
    config_model = ConnectorConfig
    display_name = "Desk"

    def __init__(self, name: str = "desk", *, clock: Callable[[], datetime] = Clock()):
        super().__init__(name, ConnectorConfig(kind=self.kind, url="https://desk.invalid"), clock=clock)
        self.tickets: dict[str, Ticket] = {}
        self.notes: dict[str, list[Comment]] = {}
        self.feed = _Feed()
        self.writes: list[tuple[str, TicketUpdate, str]] = []  # (ticket id, update, key) as received
        self._comment_ids = 0
        self.link_field_ids: tuple[str, ...] = ()  # custom fields whose value may name an issue

    def link_fields(self) -> tuple[str, ...]:
        return self.link_field_ids

    # -- what the test does to the service ---------------------------------------------------

    def put(self, ticket_id: str, subject: str = "Export fails", **kw: Any) -> Ticket:
        """A person creates or changes a ticket: a new version in the feed."""
        old = self.tickets.get(ticket_id)
        if old is None:
            ticket = Ticket(
                ref=Ref(self.name, ticket_id),
                key=f"#{ticket_id}",
                url=self.ticket_url(ticket_id),
                subject=subject,
                status="open",
                created_at=self.clock(),
                **kw,
                updated_at=self.clock(),
            )
        else:
            ticket = dataclasses.replace(old, **kw, updated_at=self.clock())
        self.tickets[ticket_id] = ticket
        self.feed.entries.append(ticket)
        return ticket

    def comment(self, ticket_id: str, body: str, *, public: bool = False, author: str = "agent1") -> Comment:
        """A person comments (an agent's internal note by default); the ticket changes."""
        comment = self._add_comment(ticket_id, body, public, author)
        self.put(ticket_id)
        return comment

    def _add_comment(self, ticket_id: str, body: str, public: bool, author: str | None) -> Comment:
        self._comment_ids += 1
        comment = Comment(str(self._comment_ids), body, public, author, self.clock(), find_markers(body))
        self.notes.setdefault(ticket_id, []).append(comment)
        return comment

    # -- the contract ------------------------------------------------------------------------

    def ticket_url(self, ticket_id: str) -> str:
        return f"https://desk.invalid/tickets/{ticket_id}"

    def ticket_url_pattern(self) -> str:
        return r"https://desk\.invalid/tickets/(?P<id>\d+)"

    def get_ticket(self, ticket_id: str) -> Ticket:
        if ticket_id not in self.tickets:
            raise NotFound(self.name, f"no ticket {ticket_id}", status=404)
        return self.tickets[ticket_id]

    def comments(self, ticket_id: str, after: str | None = None) -> list[Comment]:
        return [c for c in self.notes.get(ticket_id, []) if after is None or int(c.id) > int(after)]

    def update_ticket(
        self, ticket_id: str, update: TicketUpdate, key: str, current: Ticket | None = None
    ) -> WriteResult:
        ticket = self.get_ticket(ticket_id)
        self.writes.append((ticket_id, update, key))
        if update.note:
            self._add_comment(ticket_id, f"{update.note}\n\n[{marker_token(update.marker or key)}]", False, "syncd")
        tags = tuple(t for t in dict.fromkeys([*ticket.tags, *update.add_tags]) if t not in update.remove_tags)
        status = ticket.status
        if update.status and (not update.status_from or ticket.status in update.status_from):
            status = update.status
        self.put(ticket_id, tags=tags, fields={**ticket.fields, **update.fields}, status=status)
        return WriteResult(updated_at=self.clock())

    def find_marker(self, ticket_id: str, key: str) -> bool:
        return any(key in c.markers for c in self.notes.get(ticket_id, []))


class MemoryTracker(_InMemory, Tracker):
    kind = "memory-tracker"
    config_model = ConnectorConfig
    display_name = "Tracker"

    def __init__(self, name: str = "tracker", *, clock: Callable[[], datetime] = Clock(), prefix: str = "ENG"):
        super().__init__(name, ConnectorConfig(kind=self.kind, url="https://tracker.invalid"), clock=clock)
        self.prefix = prefix
        self.issues: dict[str, Issue] = {}  # by stable id
        self.issue_comments: dict[str, list[Comment]] = {}
        self.gone: set[str] = set()  # ids deleted (reads and writes answer Gone)
        self.read_failures: dict[str, Exception] = {}  # key or id -> what reading it raises (once)
        self.feed = _Feed()
        self.writes: list[tuple[str, str, str]] = []  # (op, issue id, key)

    # -- what the test does to the service ---------------------------------------------------

    def put(self, n: int, state: StateCategory = StateCategory.UNSTARTED, state_name: str = "Todo", **kw: Any) -> Issue:
        """A person creates or changes issue ``<prefix>-<n>`` (stable id ``id<n>``)."""
        ident = f"id{n}"
        old = self.issues.get(ident)
        if old is None:
            key = f"{self.prefix}-{n}"
            issue = Issue(
                ref=Ref(self.name, ident),
                key=key,
                url=f"https://tracker.invalid/{key}",
                title=f"Issue {n}",
                state=state,
                state_name=state_name,
                team=self.prefix,
                **kw,
                updated_at=self.clock(),
            )
        else:
            issue = dataclasses.replace(old, state=state, state_name=state_name, **kw, updated_at=self.clock())
        self.issues[ident] = issue
        self.feed.entries.append(issue)
        return issue

    def _find(self, ref: str) -> Issue:
        if ref in self.read_failures:
            raise self.read_failures.pop(ref)
        issue = self.issues.get(ref) or next((i for i in self.issues.values() if i.key == ref), None)
        if issue is None:
            raise NotFound(self.name, f"no issue {ref}", status=404)
        if issue.ref.id in self.gone:
            raise Gone(self.name, f"issue {issue.key} is deleted", status=410)
        return issue

    def _changed(self, issue: Issue, **kw: Any) -> WriteResult:
        issue = dataclasses.replace(issue, updated_at=self.clock(), **kw)
        self.issues[issue.ref.id] = issue
        self.feed.entries.append(issue)
        return WriteResult(updated_at=self.clock())

    # -- the contract ------------------------------------------------------------------------

    def link_patterns(self) -> list[str]:
        return [rf"\b(?P<ref>{self.prefix}-\d+)\b"]

    def get_issue(self, ref: str) -> Issue:
        return self._find(ref)

    def add_comment(self, issue_id: str, body: str, key: str, *, customer_data: bool = False) -> WriteResult:
        issue = self._find(issue_id)
        self.writes.append(("comment", issue_id, key))
        text = f"{body}\n\n[{marker_token(key)}]"
        self.issue_comments.setdefault(issue_id, []).append(
            Comment(
                str(len(self.issue_comments.get(issue_id, [])) + 1),
                text,
                True,
                "syncd",
                self.clock(),
                find_markers(text),
            )
        )
        return self._changed(issue)

    def attach_ticket(self, issue_id: str, url: str, title: str, subtitle: str, key: str) -> WriteResult:
        issue = self._find(issue_id)
        self.writes.append(("attach", issue_id, key))
        if any(a.url == url for a in issue.attachments):
            return WriteResult(updated_at=issue.updated_at)
        return self._changed(issue, attachments=(*issue.attachments, Attachment(url, title, key)))

    def upsert_comment(
        self, issue_id: str, body: str, key: str, slot: str, *, customer_data: bool = False
    ) -> WriteResult:
        issue = self._find(issue_id)
        self.writes.append(("upsert:" + slot, issue_id, key))
        text = f"{body}\n\n[{marker_token(key)}] [slot:{slot}]"
        comments = [c for c in self.issue_comments.get(issue_id, []) if f"[slot:{slot}]" not in c.body]
        comments.append(Comment(f"slot-{slot}", text, True, "syncd", self.clock(), find_markers(text)))
        self.issue_comments[issue_id] = comments
        return self._changed(issue)

    def find_marker(self, issue_id: str, key: str) -> bool:
        issue = self.issues.get(issue_id)
        return any(key in c.markers for c in self.issue_comments.get(issue_id, [])) or bool(
            issue and any(a.marker == key for a in issue.attachments)
        )
