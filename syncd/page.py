"""One page's work: the open store transaction and everything it commits.

The engine opens a :class:`PageWork` for each page of a feed (and for each
piece of local work: a link by hand, the clock's tick, a place turned
public). Everything the page decides goes through it: plans (links, ended
links, outbox writes, events), links, quarantine and the cursor, committed
together when the ``with`` block ends, or rolled back together if it raises.

The ticket writes the page queued are kept by ticket (:attr:`PageWork.writes`)
so that the handoff, which runs last in the same page, folds a stage change
into them instead of writing the ticket twice (:meth:`PageWork.take_writes`).

Choices worth knowing:

- :class:`Ports` is what the handoff and privacy work need from the engine:
  the store, clock, connectors, settings, and a way to open a new PageWork.
  Neither holds the engine.
- ``first_sync`` travels with the work: the connector had no cursor yet when
  it was opened, so the handoff makes no promises for what it reads.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Callable, Mapping, Protocol, Sequence

import structlog

from connectors.base import Helpdesk, Rejected, Tracker
from mappings.planner import Plan, PlanSettings, plan_link
from syncd.records import Event, Issue, Link, Ref, Ticket, format_time
from syncd.store import Store
from syncd.writes import Action, TicketUpdate

log = structlog.get_logger("syncd.engine")

# Origins of links syncd or a person makes now: never "existing" links, whatever the sync.
MADE_BY_SYNCD_OR_HAND = ("cli", "escalation", "followup", "restored")


@dataclass
class PollReport:
    connector: str
    pages: int = 0
    records: int = 0
    changed: int = 0
    # Of ``changed``: records whose only news was syncd's own write coming back.
    echoes: int = 0
    actions: int = 0
    links: int = 0
    quarantined: int = 0
    error: str | None = None
    auth_failed: bool = False
    # The connector waits out its service's rate limit until then: not polled.
    rate_limited_until: datetime | None = None


class Counts(Protocol):
    actions: int


class PageWork:
    """The open transaction of one page: commit plans, link, quarantine, release, set the cursor.

    Use as ``with PageWork(...) as work:``; outside a ``with`` block its
    methods join whatever transaction the caller holds (the store's
    transactions nest)."""

    def __init__(
        self,
        store: Store,
        settings: PlanSettings,
        helpdesk: str | None,
        *,
        first_sync: bool = False,
        on_queued: Callable[[Action], None] | None = None,
    ):
        self.store = store
        self.settings = settings
        self.helpdesk = helpdesk  # the helpdesk connector's name: its ticket writes are kept by ticket
        self.first_sync = first_sync
        self._on_queued = on_queued
        # Ticket writes queued in this transaction, by ticket: a stage change in the same page is folded into them.
        self.writes: dict[Ref, Action] = {}
        self._transaction: AbstractContextManager[Any] | None = None

    def __enter__(self) -> "PageWork":
        self._transaction = self.store.transaction()
        self._transaction.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        transaction, self._transaction = self._transaction, None
        self.writes = {}
        assert transaction is not None, "PageWork left without being entered"
        return transaction.__exit__(kind, exc, tb)

    def commit(self, plan: Plan) -> int:
        """Write a plan's links, ended links, actions and events; returns the actions queued (new keys)."""
        for link in plan.links:
            self.store.add_link(link)
        for link, reason in plan.ended:
            self.store.end_link(link.ticket, link.issue, reason)
        queued = 0
        if not plan.actions:
            fresh = []
        elif len(plan.actions) == 1:
            fresh = [self.store.enqueue(plan.actions[0])]
        else:  # an issue's notes to its linked tickets: one statement for them all
            fresh = self.store.enqueue_many(plan.actions)
        for action, new in zip(plan.actions, fresh):
            if new:
                queued += 1
                if isinstance(action.write, TicketUpdate) and action.connector == self.helpdesk:
                    self.writes[Ref(action.connector, action.target)] = action
                if self._on_queued is not None:
                    self._on_queued(action)
        for event in plan.events:
            self.store.add_event(event)
        return queued

    def commit_many(self, plans: Sequence[Plan]) -> int:
        """:meth:`commit` of many plans (a tracker page's issue updates), with one statement for
        the new actions (:meth:`Store.enqueue_many`) and one for the events;
        returns the actions queued. The same rows as committing plan by plan: links and ended
        links first, actions and events each in the plans' order, a key given twice queued
        once; the queued callback sees each new action in order, and one for a write that is
        not a ticket update (which may write an event of its own) sees the earlier plans'
        events written first."""
        plans = [plan for plan in plans if plan]
        if len(plans) <= 1:
            return sum(self.commit(plan) for plan in plans)
        for plan in plans:
            for link in plan.links:
                self.store.add_link(link)
            for link, reason in plan.ended:
                self.store.end_link(link.ticket, link.issue, reason)
        actions = [action for plan in plans for action in plan.actions]
        fresh = iter(self.store.enqueue_many(actions) if actions else [])
        queued = 0
        events: list[Event] = []
        for plan in plans:
            for action in plan.actions:
                if not next(fresh):
                    continue
                queued += 1
                ticket_write = isinstance(action.write, TicketUpdate)
                if ticket_write and action.connector == self.helpdesk:
                    self.writes[Ref(action.connector, action.target)] = action
                if self._on_queued is not None:
                    if not ticket_write and events:
                        self.store.add_events(events)
                        events = []
                    self._on_queued(action)
            events += plan.events
        self.store.add_events(events)
        return queued

    def take_writes(self) -> dict[Ref, Action]:
        """The ticket writes queued so far, handed over (to the handoff); the work keeps none."""
        writes, self.writes = self.writes, {}
        return writes

    def link(self, ticket: Ticket, issue: Issue, origin: str, report: Counts | None = None) -> int:
        """Create the link unless it exists, and plan its writes; returns 1 when it is new."""
        rows = self.store.links_for_ticket(ticket.ref, active=False)
        if any(r.issue == issue.ref and r.active for r in rows):
            return 0
        ended = [r for r in rows if r.issue == issue.ref and not r.active]
        epoch = format_time(ended[-1].ended_at) if ended and ended[-1].ended_at else ""
        others = self.store.get_snapshots([r.issue for r in rows if r.active])
        ticket_count = len(self.store.links_for_issue(issue.ref)) + 1
        plan = plan_link(
            Link(ticket.ref, issue.ref, origin),
            ticket,
            issue,
            list(others.values()),
            self.settings,
            ticket_count=ticket_count,
            epoch=epoch or "",
            quiet=self.adopts(origin),
        )
        n = self.commit(plan)
        if report is not None:
            report.actions += n
        return 1

    def adopts(self, origin: str) -> bool:
        """Whether a link found now is one that existed before syncd watched (read in a
        feed's first sync, not made by hand or by an escalation) and the settings adopt
        those quietly."""
        return self.settings.existing_links == "adopt" and self.first_sync and origin not in MADE_BY_SYNCD_OR_HAND

    def quarantine(self, connector: str, rejected: Sequence[Rejected]) -> int:
        """Records the page could not read are kept apart, with why; returns how many."""
        for item in rejected:
            self.store.quarantine(connector, item.record_id, item.reason, item.payload)
            self.store.add_event(
                Event(
                    "quarantined",
                    f"{connector} record {item.record_id}: {item.reason}",
                    None,
                    None,
                    {"connector": connector, "record_id": item.record_id},
                )
            )
            log.warning("record quarantined", connector=connector, record_id=item.record_id, reason=item.reason)
        return len(rejected)

    def release(self, connector: str, record_ids: list[str]) -> None:
        """Records that were quarantined and have now been processed leave quarantine."""
        if not record_ids:
            return
        held = self.store.quarantined_ids(connector)
        if not held.intersection(record_ids):
            return
        wanted = set(record_ids)
        for row in self.store.list_quarantine():
            if row.connector == connector and row.record_id in wanted:
                self.store.resolve_quarantine(row.id)
                self.store.add_event(
                    Event(
                        "released",
                        f"{connector} record {row.record_id} read well again; out of quarantine",
                        None,
                        None,
                        {"connector": connector, "record_id": row.record_id},
                    )
                )
                log.info("record out of quarantine", connector=connector, record_id=row.record_id)

    def set_cursor(self, connector: str, cursor: str | None) -> None:
        """Where the feed resumes: committed with the data the page covered."""
        self.store.set_cursor(connector, cursor)


@dataclass(frozen=True)
class Ports:
    """What the handoff and the privacy work use of the engine's world, and nothing more."""

    store: Store
    clock: Callable[[], datetime]
    trackers: Mapping[str, Tracker]
    helpdesk: Helpdesk
    settings: PlanSettings
    work: Callable[[], PageWork]  # a new PageWork (enter it to open its transaction)
