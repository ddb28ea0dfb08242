"""The handoff run by the engine: stages, escalation, promises, owner gaps and demand.

This is the glue between the store and the pure planning in
:mod:`mappings.stage_plan`, :mod:`mappings.promises`, :mod:`mappings.stages`
and :mod:`mappings.handoff_plan`. It runs inside the page's transaction
(``update``, given the page's :class:`~syncd.page.PageWork`), on the
engine's clock (``tick``) and after delivery (``finish_created``: link the
issue an escalation created, or the follow-up ticket opened for a closed
one), each of those in a PageWork of its own. It sees the engine only
through its :class:`~syncd.page.Ports`.

Writes are kept few. Whatever the handoff wants to tell a ticket in one
page (stage field and tag, the needs-context note, a promise falling due,
an owner gap) is folded into ONE ticket write: the write the page already
queued for the ticket (a link note, a state note) when there is one, else a
write of its own. A stage change alone carries a marker shared by every
ticket entering that stage together, so delivery can send them as one bulk
update.

What is remembered per ticket (``store`` meta): ``agent_notes`` (the agent's
latest internal notes, for the acceptance criteria and the handoff record),
``told_customer_at``, ``reopened_at``, ``missing`` and ``missing_noted``
(the needs-context note), ``escalation`` (the key of the planned issue
creation), ``owner_gaps`` (gaps already noted), ``stage_cleared`` and
``followup_ticket``; per issue ``stage_mark`` and the demand comment's
``demand_body``/``demand_version``/``demand_inputs`` (a digest of what the
text was built from, so that it is built again only when that moved).

Within a page nothing is read twice: the engine hands in the tickets it
stored (``records``), the page's links are read once (again only when a
plan of the page linked a ticket), each issue's stage view and each
ticket's route are worked out once, and the demand comments use the page's
issues, tickets and metas.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator, Mapping, Sequence

import structlog

from mappings import promises as pr
from mappings.handoff_plan import (
    DemandTicket,
    demand_body,
    demand_inputs,
    plan_demand,
    plan_follow_up_ticket,
    plan_handoff,
    plan_handoff_failed,
    plan_missing,
    plan_owner_gap,
    plan_promise_broken,
    plan_promise_due,
    promise_event,
)
from mappings.planner import Plan, ticket_group
from mappings.routes import Mappings, Route
from mappings.stage_plan import (
    StageDisplay,
    follow_up_stage,
    issue_view,
    observe,
    plan_stage,
    reopened_at,
    told_customer_at,
)
from mappings.stages import ACTIVE, IssueView, StageResult, StageSpan, owner_gaps
from syncd.errors import Gone, NotFound, SyncdError
from syncd.page import PageWork, Ports
from syncd.records import (
    Comment,
    Event,
    Issue,
    Link,
    Promise,
    PromiseChange,
    PromiseState,
    Ref,
    Stage,
    Ticket,
    format_time,
    idempotency_key,
    parse_time,
    to_dict,
    utc,
)
from syncd.store import LinkRow, Store
from syncd.writes import Action, CreateIssue, FollowUpTicket, TicketUpdate, stored

log = structlog.get_logger("syncd.handoff")

AGENT_NOTES_KEPT = 5  # the agent's latest internal notes remembered per ticket
AGENT_NOTE_CHARS = 4000
# Follow-ups the owner-gap sweep reads from the store at a time.
SWEEP_PAGE = 500
OWNER_SWEEP_EVERY = timedelta(minutes=5)  # issues that outlive the triage SLA without a change
BROKEN_TAG = "syncd_promise_broken"


@dataclasses.dataclass(frozen=True)
class EscalatedAgain:
    """What ``syncd escalate`` planned: the route and where its issue is now created."""

    route: str
    tracker: str
    place: str
    dropped: int  # earlier creates given up (refused, or not sent yet)
    earlier_places: list[str]


class _Book:
    """A page's bookkeeping, read for all its tickets (and their issues) at once and
    written back at the end of the page in one statement per kind of row: the
    records' metas, the tickets' stage histories and their promises.

    Everything the handoff reads while the page runs comes from here and sees
    what it changed before (a meta is replaced, never changed in place: a caller
    holding the one it read keeps it as it was). :meth:`flush` writes inside the
    page's transaction, so the page still commits, or rolls back, as one."""

    def __init__(self, store: Store, tickets: Sequence[Ref], issues: Sequence[Ref]):
        self.store = store
        self.metas = store.get_metas([*tickets, *issues])
        self.stages = store.stage_histories(tickets)
        self.promises: dict[Ref, dict[str, Promise]] = {
            ref: {p.id: p for p in promises} for ref, promises in store.promises_for_tickets(tickets).items()
        }
        self.changed_metas: set[Ref] = set()
        self.changed_stages: set[Ref] = set()
        self.changed_promises: dict[str, Promise] = {}
        self.unsent: set[str] = set()  # keys of the page's queued writes whose payload may still change
        self.payloads: dict[str, dict] = {}  # ... and the new payloads of those that changed
        # What the page computed once and reads again: each ticket's route (with the snapshot
        # it was found for), each issue's view by (issue, route, stored mark), and whether a
        # plan of the page linked anything (the page's links are then read again).
        self.routes: dict[Ref, tuple[Ticket, Route | None]] = {}
        self.views: dict[tuple[Ref, int, tuple | None], tuple[IssueView, list | None]] = {}
        self.linked = False

    def load_metas(self, refs: Iterable[Ref]) -> None:
        """Read the metas of ``refs`` not read yet, in one statement."""
        wanted = [ref for ref in refs if ref not in self.metas]
        if wanted:
            self.metas.update(self.store.get_metas(wanted))

    def meta(self, ref: Ref) -> dict:
        meta = self.metas.get(ref)
        if meta is None:
            meta = self.metas[ref] = self.store.get_meta(ref)
        return meta

    def set_meta(self, ref: Ref, values: dict) -> None:
        merged = dict(self.meta(ref))  # as Store.set_meta merges, into a new dict
        for name, value in values.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = to_dict(value)
        self.metas[ref] = merged
        self.changed_metas.add(ref)

    def stage_history(self, ref: Ref) -> list[tuple[Stage, datetime]]:
        history = self.stages.get(ref)
        if history is None:
            history = self.stages[ref] = self.store.stage_history(ref)
        return list(history)

    def put_stage(self, ref: Ref, history: Iterable[tuple]) -> None:
        spans = [(Stage(getattr(stage, "value", stage)), utc(since)) for stage, since in history]
        if not spans:
            raise ValueError("a stage history needs at least one entry")
        self.stages[ref] = spans
        self.changed_stages.add(ref)

    def promises_of(self, ref: Ref) -> dict[str, Promise]:
        promises = self.promises.get(ref)
        if promises is None:
            promises = self.promises[ref] = {p.id: p for p in self.store.promises_for_ticket(ref)}
        return promises

    def promise(self, promise_id: str, ticket: Ref) -> Promise | None:
        found = self.promises_of(ticket).get(promise_id)
        if found is None and promise_id not in self.changed_promises:
            found = self.store.get_promise(promise_id)  # a promise id new to this ticket (rare)
        return found or self.changed_promises.get(promise_id)

    def put_promise(self, promise: Promise) -> bool:
        """Like Store.put_promise: True when it changed anything."""
        before = self.promise(promise.id, promise.ticket)
        if before == promise:
            return False
        if before is not None and before.ticket != promise.ticket:
            self.promises_of(before.ticket).pop(promise.id, None)
        self.promises_of(promise.ticket)[promise.id] = promise
        self.changed_promises[promise.id] = promise
        return True

    def flush(self) -> None:
        """Write what the page changed: one statement per kind of row."""
        if self.changed_metas:
            self.store.put_metas({ref: self.metas[ref] for ref in self.changed_metas})
        if self.changed_stages:
            self.store.put_stages({ref: self.stages[ref] for ref in self.changed_stages})
        if self.changed_promises:
            self.store.put_promises(list(self.changed_promises.values()))
        if self.payloads:
            self.store.replace_payloads(self.payloads)
        self.changed_metas, self.changed_stages, self.changed_promises, self.payloads = set(), set(), {}, {}


class Handoff:
    """The handoff of every follow-up: through the engine's ports (store, connectors, clock, settings)
    and the mappings; what it plans goes into the open page's work."""

    def __init__(self, ports: Ports, mappings: Mappings):
        self.ports = ports
        self.store = ports.store
        self.mappings = mappings
        self.display = StageDisplay.of(mappings)
        self._last_sweep: datetime | None = None
        # While update() runs: the page's issues (see _issue_views) and its bookkeeping.
        self._page_issues: dict[Ref, Ticket | Issue] = {}
        self._book: _Book | None = None

    @property
    def now(self) -> datetime:
        return utc(self.ports.clock())

    # -- one page ----------------------------------------------------------------------------------

    def update(
        self,
        work: PageWork,
        tickets: Sequence[Ref],
        previous: dict[Ref, Ticket | Issue] | None = None,
        comments: dict[Ref, list[Comment]] | None = None,
        records: Mapping[Ref, Ticket] | None = None,
    ) -> int:
        """Recompute the follow-up of tickets whose inputs changed, in the page's ``work``.

        ``previous`` and ``comments`` come with a helpdesk page (the snapshots
        before it, the comments read with it); an issue page passes neither.
        ``records``: tickets as the page stored them, when the caller holds them
        (those are not read back from the store). The ticket writes the page
        already queued (``work.writes``) take the stage change and the
        handoff's notes in.
        """
        writes = work.take_writes()
        refs = list(dict.fromkeys(tickets))
        held = records or {}
        snapshots: dict[Ref, Ticket | Issue] = self.store.get_snapshots([r for r in refs if r not in held])
        snapshots.update((r, held[r]) for r in refs if r in held)
        handed = [r for r in refs if isinstance(snapshots.get(r), Ticket)]
        # The page's links, their issues, and the bookkeeping of both, read once for the page.
        links = self.store.links_for_tickets(handed)
        issue_refs = list(dict.fromkeys(row.issue for rows in links.values() for row in rows))
        self._page_issues = self.store.get_snapshots(issue_refs)
        book = self._book = _Book(self.store, handed, issue_refs)
        # The writes this page queued that can still take the handoff's part (not flagged to be
        # checked before sending): known now, so that each is rewritten with the others at the end.
        book.unsent = self.store.unsent_keys([w.key for w in writes.values()])
        queued = 0
        try:
            for ref in handed:
                ticket = snapshots[ref]
                assert isinstance(ticket, Ticket)
                prev = (previous or {}).get(ref)
                queued += self._one(
                    work,
                    ticket,
                    prev if isinstance(prev, Ticket) else None,
                    None if comments is None else comments.get(ref, []),
                    writes.get(ref),
                    links[ref],
                )
            book.flush()  # the demand below reads the promises the page changed
            if book.linked:
                # A plan of the loop linked a ticket: the issues of these tickets, as linked now.
                links = self.store.links_for_tickets(handed)
            demand = list(dict.fromkeys(row.issue for rows in links.values() for row in rows))
            queued += self._page_demand(work, demand, {r: t for r, t in snapshots.items() if isinstance(t, Ticket)})
            book.flush()
        finally:
            self._page_issues, self._book = {}, None
        return queued

    def _one(
        self,
        work: PageWork,
        ticket: Ticket,
        prev: Ticket | None,
        comments: list[Comment] | None,
        host: Action | None,
        links: list[LinkRow],
    ) -> int:
        ref = ticket.ref
        meta = self._meta(ref)
        notes = self._remember_notes(ticket, meta, comments or [])
        told, reopened = self._told_and_reopened(ticket, prev, comments, meta)
        route = self._route_for(ticket)
        views = self._issue_views(ref, route, links)
        cleared = bool(meta.get("stage_cleared")) or bool(meta.get("followup_ticket"))
        stored = self._stage_history(ref)
        result = follow_up_stage(
            observe(ticket, route, views, now=self.now, told_at=told, reopened=reopened, notes=notes),
            route,
            [] if cleared else stored,
        )
        if meta.get("followup_ticket"):
            result = StageResult(None, result.history, False)  # followed up by a new ticket: this one is done
        extra: list[Plan] = []
        fields: dict[str, object] = {}
        issue_refs = tuple(row.issue for row in links)
        if route is not None and comments is not None:
            self._agent_promises(ticket, prev, route, issue_refs)
        if route is not None:
            extra += self._escalate_or_note(ticket, route, result, views, notes, meta, fields)
            extra += self._promises(
                ticket,
                prev,
                route,
                result,
                told,
                meta,
                issue_refs,
                first_seen=comments is not None and prev is None and work.first_sync,
            )
            extra += self._owner_gaps(ticket, route, result.stage, views, meta)
        stage_plan = Plan()
        if result.changed:
            history = list(stored) + [result.history[-1]] if cleared else list(result.history)
            self._put_stage(ref, history)
            if cleared:
                self._set_meta(ref, stage_cleared=None)
            stage_plan = plan_stage(
                ticket, dataclasses.replace(result, history=tuple(StageSpan(*h) for h in history)), self.display
            )
        elif result.stage is None and stored and not cleared:
            stage_plan = self._clear_stage(ticket, stored)
        if result.stage is Stage.NEW and any(isinstance(a.write, CreateIssue) for p in extra for a in p.actions):
            # The issue is being created and its link follows in this cycle, moving the stage on:
            # New stays in the history but is not written on its own.
            stage_plan.actions = []
        return self._write(work, ticket, host, stage_plan, extra, fields)

    def _write(
        self,
        work: PageWork,
        ticket: Ticket,
        host: Action | None,
        stage_plan: Plan,
        extra: list[Plan],
        fields: dict[str, object],
    ) -> int:
        """Fold everything for this ticket into as few writes as possible, then commit."""
        merged = Plan(events=list(stage_plan.events))
        ticket_writes: list[tuple[str, TicketUpdate]] = []
        for plan in extra:
            merged.events += plan.events
            merged.links += plan.links
            for action in plan.actions:
                if isinstance(action.write, TicketUpdate) and action.target == ticket.ref.id:
                    ticket_writes.append((action.key, action.write))
                else:
                    merged.actions.append(action)
        if merged.links and self._book is not None:
            self._book.linked = True  # the page's links are read again before its demand comments
        stage_write = _ticket_update(stage_plan.actions[0]) if stage_plan.actions else None
        if fields:
            ticket_writes.append(("fields", TicketUpdate(fields=fields)))
        if not ticket_writes and stage_write is None:
            return work.commit(merged)
        if not ticket.can_update:
            return work.commit(merged)  # a closed ticket takes no writes
        combined = TicketUpdate()
        for _key, write in ticket_writes:
            combined = combined.merge(write)
        replaces = combined.replaces_resolution
        combined = combined.settled()
        if stage_write is not None:
            combined = combined.with_stage(stage_write) if combined else stage_write
        if replaces:
            combined = dataclasses.replace(combined, replaces_resolution=True)
        host_write = _ticket_update(host).merge(combined, keep_marker=True) if host else None
        if (
            host is not None
            and host_write is not None
            and self._replace_payload(host.key, host_write.settled().payload())
        ):
            for event in merged.events:
                if event.kind == "stage":
                    event.detail["written_with"] = host.key
            return work.commit(merged)
        if ticket_writes:
            keys = [k for k, _ in ticket_writes] + ([stage_plan.actions[0].key] if stage_plan.actions else [])
            key = idempotency_key("handoff", ticket.ref, *keys)
            merged.actions.append(
                dataclasses.replace(combined.settled(), marker=None).action(
                    key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref)
                )
            )
        else:
            merged.actions += stage_plan.actions
        return work.commit(merged)

    def _clear_stage(self, ticket: Ticket, stored: list) -> Plan:
        """No longer a follow-up (unflagged, unlinked): the stage field and tag go; the history stays."""
        last = stored[-1]
        self._set_meta(ticket.ref, stage_cleared=format_time(self.now))
        for promise in self._promises_for_ticket(ticket.ref, active=True):
            self._put_promise(pr.on_cancel(promise, self.now, "no longer a follow-up"), ticket.key)
        event = Event(
            "stage",
            f"{ticket.key}: no longer a follow-up (was {Stage(last[0]).label})",
            ticket.ref,
            None,
            {"stage": None, "from": Stage(last[0]).value},
        )
        write = self.display.write(None, idempotency_key("stage", "none", format_time(utc(last[1]))))
        plan = Plan(events=[event])
        if write:
            key = idempotency_key("stage", ticket.ref, "none", format_time(utc(last[1])))
            plan.actions.append(write.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref)))
        return plan

    # -- the bookkeeping: the page's (see _Book) while update() runs, else the store's -----------------

    def _meta(self, ref: Ref) -> dict:
        return self._book.meta(ref) if self._book is not None else self.store.get_meta(ref)

    def _set_meta(self, ref: Ref, **values: object) -> None:
        if self._book is not None:
            self._book.set_meta(ref, values)
        else:
            self.store.set_meta(ref, **values)

    def _stage_history(self, ref: Ref) -> list[tuple[Stage, datetime]]:
        return self._book.stage_history(ref) if self._book is not None else self.store.stage_history(ref)

    def _put_stage(self, ref: Ref, history: list) -> None:
        if self._book is not None:
            self._book.put_stage(ref, history)
        else:
            self.store.put_stage(ref, history)

    def _promises_for_ticket(self, ref: Ref, *, active: bool = False) -> list[Promise]:
        """The ticket's promises, oldest first (as Store.promises_for_ticket orders them)."""
        if self._book is None:
            return self.store.promises_for_ticket(ref, active=active)
        promises = sorted(self._book.promises_of(ref).values(), key=lambda p: (p.created_at, p.id))
        return [p for p in promises if not p.state.is_final] if active else promises

    def _replace_payload(self, key: str, payload: dict) -> bool:
        """Store.replace_payload; within a page, written with the page's others at its end."""
        if self._book is None:
            return self.store.replace_payload(key, payload)
        if key not in self._book.unsent:
            return False
        self._book.payloads[key] = payload
        return True

    # -- what the ticket says ------------------------------------------------------------------------

    def _remember_notes(self, ticket: Ticket, meta: dict, comments: list[Comment]) -> list[str]:
        notes = list(meta.get("agent_notes") or [])
        requester = ticket.requester.id if ticket.requester else None
        fresh = [
            c.body[:AGENT_NOTE_CHARS]
            for c in comments
            if not c.public and not c.markers and c.author_id is not None and c.author_id != requester
        ]
        if fresh:
            notes = (notes + fresh)[-AGENT_NOTES_KEPT:]
            self._set_meta(ticket.ref, agent_notes=notes)
        return notes

    def _told_and_reopened(
        self, ticket: Ticket, prev: Ticket | None, comments: list[Comment] | None, meta: dict
    ) -> tuple[datetime | None, datetime | None]:
        known = parse_time(meta["told_customer_at"]) if meta.get("told_customer_at") else None
        told = told_customer_at(ticket, prev, comments or (), known) if comments is not None else known
        known_reopen = parse_time(meta["reopened_at"]) if meta.get("reopened_at") else None
        reopened = reopened_at(ticket, prev, known_reopen)
        if told != known:
            self._set_meta(ticket.ref, told_customer_at=told)
        if reopened != known_reopen:
            self._set_meta(ticket.ref, reopened_at=reopened)
        return told, reopened

    def _issue_views(self, ticket: Ref, route: Route | None, links: list[LinkRow] | None = None) -> list[IssueView]:
        """The ticket's linked issues as the stage sees them (``links``: its active links, when
        the caller read them already); remembers when each entered its stage."""
        rows = self.store.links_for_ticket(ticket) if links is None else links
        refs = [row.issue for row in rows]
        # Within a page (update) the issues and their marks were read once for all its tickets.
        paged = links is not None and self._book is not None
        issues = self._page_issues if paged else self.store.get_snapshots(refs)
        views = []
        for ref in refs:
            issue = issues.get(ref)
            tracker = self.ports.trackers.get(ref.connector)
            if not isinstance(issue, Issue) or tracker is None:
                continue
            stored = self._meta(ref).get("stage_mark")
            # Within a page each of an issue's tickets asks again: the view is the same for the
            # same issue, route and stored mark (issue_view reads nothing else), so it is made once.
            key = (ref, id(route), tuple(stored) if stored else None)
            known = self._book.views.get(key) if paged and self._book is not None else None
            if known is not None:
                view, new_stored = known
            else:
                since = parse_time(stored[1]) if stored else None
                mark = (Stage(stored[0]), since) if stored and since is not None else None
                view, new_mark = issue_view(issue, tracker.kind, route, mark)
                new_stored = None if new_mark == mark else [new_mark[0].value, format_time(new_mark[1])]
                if paged and self._book is not None:
                    self._book.views[key] = (view, new_stored)
            if new_stored is not None:
                # Within a page, the page's next ticket on this issue sees it.
                self._set_meta(ref, stage_mark=new_stored)
            views.append(view)
        return views

    def _route_for(self, ticket: Ticket) -> Route | None:
        """The ticket's route; within a page found once per ticket snapshot."""
        if self._book is None:
            return self.mappings.route_for(ticket)
        known = self._book.routes.get(ticket.ref)
        if known is not None and known[0] is ticket:
            return known[1]
        route = self.mappings.route_for(ticket)
        self._book.routes[ticket.ref] = (ticket, route)
        return route

    # -- escalation and the needs-context note -------------------------------------------------------

    def _escalate_or_note(
        self,
        ticket: Ticket,
        route: Route,
        result: StageResult,
        views: list[IssueView],
        notes: list[str],
        meta: dict,
        fields: dict[str, object],
    ) -> list[Plan]:
        plans: list[Plan] = []
        missing_field = self.mappings.missing_field
        flagged = route.is_flagged(ticket)
        if result.stage is Stage.NEEDS_CONTEXT:
            verdict = route.acceptance(ticket, notes)
            note = plan_missing(
                ticket,
                route,
                verdict.missing,
                meta.get("missing_noted") or [],
                missing_field=missing_field,
                shown=meta.get("missing_shown"),
                note_format=self.ports.settings.note_format,
            )
            self._set_meta(
                ticket.ref,
                missing=list(verdict.missing),
                missing_noted=list(note.noted),
                missing_shown=note.field_value,
            )
            plans.append(note.plan)
            return plans
        if meta.get("missing") or meta.get("missing_shown"):
            # Complete now (or handed over by a link): the field shows nothing is missing.
            if missing_field and meta.get("missing_shown"):
                fields[missing_field] = ""
            self._set_meta(ticket.ref, missing=None, missing_noted=None, missing_shown=None)
        if not flagged or views or result.stage not in (Stage.NEW, None):
            return plans
        if route.tracker not in self.ports.trackers:
            return plans
        reopen_time = parse_time(meta.get("reopened_at"))
        epoch = format_time(reopen_time) if reopen_time is not None else ""
        if meta.get("escalation", {}).get("epoch", None) == epoch:
            return plans  # already planned for this handoff: flagging again creates nothing
        promises = self._rule_promises(ticket, route, ())
        count = 1
        plan = plan_handoff(
            ticket,
            route,
            note=notes[-1] if notes else None,
            promises=promises,
            customer_count=count,
            epoch=epoch,
            helpdesk_name=self.ports.settings.helpdesk_name,
            body_format=self.ports.trackers[route.tracker].text_format,
            attempt=int(meta.get("escalation_tries") or 0),
        )
        self._set_meta(ticket.ref, escalation={"epoch": epoch, "key": plan.actions[0].key})
        plans.append(plan)
        return plans

    # -- promises ------------------------------------------------------------------------------------

    def _rule_promises(self, ticket: Ticket, route: Route, issues: Iterable[Ref]) -> list[Promise]:
        """Promises the route's rule makes at the handoff, once per handoff (stored here)."""
        rule = route.promises
        if rule is None:
            return []
        existing = {p.id: p for p in self._promises_for_ticket(ticket.ref)}
        epoch = self._meta(ticket.ref).get("reopened_at") or ""
        made = []
        for promise in pr.handoff_promises(rule, ticket.ref, issues, self.now, owner=ticket.assignee_id, epoch=epoch):
            if promise.id in existing:
                made.append(existing[promise.id])
                continue
            self._put_promise(promise, ticket.key)
            made.append(promise)
        return made

    def _agent_promises(self, ticket: Ticket, prev: Ticket | None, route: Route, issue_refs: Sequence[Ref]) -> None:
        """A follow-up date field or tag the agent set in the helpdesk (``issue_refs``: the ticket's linked issues)."""
        rule = route.promises
        if rule is None:
            return
        issues = list(issue_refs)
        existing = {p.id: p for p in self._promises_for_ticket(ticket.ref)}
        made = []
        from_field = pr.promise_from_field(rule, ticket, issues, self.now)
        if from_field is not None:
            made.append(from_field)
            for old in existing.values():  # a new date replaces the one set before
                if old.origin == "field" and old.id != from_field.id and not old.state.is_final:
                    self._put_promise(pr.on_cancel(old, self.now, "follow-up date changed"), ticket.key)
        added = [t for t in ticket.tags if prev is None or t not in prev.tags]
        made += pr.promises_from_tags(rule, ticket, added, issues, ticket.updated_at)
        for promise in made:
            if promise.id not in existing:
                self._put_promise(promise, ticket.key)

    def _promises(
        self,
        ticket: Ticket,
        prev: Ticket | None,
        route: Route,
        result: StageResult,
        told: datetime | None,
        meta: dict,
        issue_refs: tuple[Ref, ...],
        first_seen: bool = False,
    ) -> list[Plan]:
        plans: list[Plan] = []
        if result.changed and result.stage in (Stage.ASSIGNED, Stage.WAITING) and issue_refs and not first_seen:
            # The handoff: a follow-up just linked. A ticket first seen already linked (the first
            # sync) was handed over before syncd watched: no deadline is invented for it.
            before = result.history[-2].stage if len(result.history) > 1 else None
            if before in (None, Stage.NEW, Stage.NEEDS_CONTEXT):
                self._rule_promises(ticket, route, issue_refs)
        known_told = parse_time(meta["told_customer_at"]) if meta.get("told_customer_at") else None
        active = self._promises_for_ticket(ticket.ref, active=True)
        changed: list[Promise] = []
        due_now: list[Promise] = []
        for promise in active:
            new = promise
            if issue_refs and set(new.issues) != set(issue_refs):
                new = dataclasses.replace(new, issues=issue_refs)
            if result.stage is Stage.RESOLVED and result.changed:
                respond_by = (
                    route.promises.due(result.since, route.promises.respond_within)
                    if (route.promises and result.since)
                    else None
                )
                moved = pr.on_issue_resolved(new, result.since or self.now, respond_by=respond_by)
                if moved.state is PromiseState.DUE and new.state is not PromiseState.DUE:
                    due_now.append(moved)
                new = moved
            if told is not None and told != known_told:
                solved = ticket.status == "solved" and (prev is None or prev.status != "solved")
                new = pr.on_solved(new, told) if solved else pr.on_public_reply(new, told)
            if new != promise:
                changed.append(new)
        for promise in changed:
            self._put_promise(promise, ticket.key)
        if due_now:
            issues = [i for i in self.store.get_snapshots(issue_refs).values() if isinstance(i, Issue)]
            settings = self.ports.settings
            note = plan_promise_due(ticket, issues, due_now, route, settings.note_format, settings.issue_key)
            if ticket.can_update:
                key = idempotency_key("promise_due", ticket.ref, *sorted(p.id for p in due_now))
                write = TicketUpdate(
                    note=note,
                    status="open",
                    replaces_resolution=True,
                    status_from=tuple(self.ports.settings.reopen_statuses),
                )
                plans.append(
                    Plan(actions=[write.action(key, ticket.ref.connector, ticket.ref.id, ticket_group(ticket.ref))])
                )
            elif ticket.status == "closed":
                plans.append(
                    plan_follow_up_ticket(
                        ticket,
                        issues,
                        note,
                        route,
                        result.since or self.now,
                        self.ports.settings.note_format,
                        self.ports.settings.issue_key,
                    )
                )
        return plans

    def _put_promise(self, promise: Promise, ticket_key: str) -> None:
        """Store the promise; its history gets an event when its state moved (not for a new issue list)."""
        if self._book is not None:
            before = self._book.promise(promise.id, promise.ticket)
            changed = self._book.put_promise(promise)
        else:
            before = self.store.get_promise(promise.id)
            changed = self.store.put_promise(promise)
        if changed and (before is None or len(before.history) != len(promise.history)):
            self.store.add_event(promise_event(promise, ticket_key))

    def tick(self) -> int:
        """The clock: promises past their deadline are broken; issues past the triage SLA are owner gaps.

        Local work only (the store); the writes it plans go out with the
        cycle's delivery. Inside one transaction.
        """
        now = self.now
        queued = 0
        with self.ports.work() as work:
            demand: dict[Ref, None] = {}
            for promise in self.store.promises_past_due(now):
                broken = pr.on_clock(promise, now)
                if broken == promise:
                    continue
                demand.update((ref, None) for ref in broken.issues)
                ticket = self.store.get_snapshot(promise.ticket)
                key = ticket.key if isinstance(ticket, Ticket) else str(promise.ticket)
                self._put_promise(broken, key)
                if isinstance(ticket, Ticket):
                    route = self.mappings.route_for(ticket)
                    queued += work.commit(
                        plan_promise_broken(
                            ticket,
                            broken,
                            route,
                            tag=self.mappings.broken_tag or BROKEN_TAG,
                            note_format=self.ports.settings.note_format,
                        )
                    )
            queued += self.update_demand(work, list(demand))  # the oldest open promise may have changed
            if self._last_sweep is None or now - self._last_sweep >= OWNER_SWEEP_EVERY:
                self._last_sweep = now
                queued += self._sweep_owner_gaps(work)
        return queued

    # -- owner gaps -----------------------------------------------------------------------------------

    def _owner_gaps(
        self, ticket: Ticket, route: Route, stage: Stage | None, views: list[IssueView], meta: dict
    ) -> list[Plan]:
        rule = route.promises
        gaps = owner_gaps(
            stage,
            ticket.ref,
            ticket.assignee_id,
            views,
            now=self.now,
            ticket_unassigned_since=ticket.created_at,
            triage_sla=rule.triage_sla if rule else None,
            calendar=rule.calendar if rule else pr.ALWAYS,
        )
        noted = set(meta.get("owner_gaps") or [])
        fresh = [g for g in gaps if g.key not in noted]
        if not fresh or stage is None:
            return []
        self._set_meta(ticket.ref, owner_gaps=sorted(noted | {g.key for g in fresh}))
        issues = self.store.get_snapshots([g.ref for g in fresh if g.kind == "issue"])
        plans = []
        for gap in fresh:
            issue = issues.get(gap.ref) if gap.kind == "issue" else None
            if gap.kind == "issue" and not isinstance(issue, Issue):
                continue
            tracker = self.ports.trackers.get(gap.ref.connector) if gap.kind == "issue" else None
            plans.append(
                plan_owner_gap(
                    ticket,
                    gap,
                    stage,
                    route,
                    issue,
                    triage_sla=str(rule.triage_sla) if rule and rule.triage_sla else "none",
                    note_format=self.ports.settings.note_format,
                    issue_format=tracker.text_format if tracker else "plain",
                )
            )
        return plans

    def _active_histories(self) -> Iterator[tuple[Ref, list[tuple[Stage, datetime]]]]:
        """The stage histories of active follow-ups, read a page at a time (never all at once)."""
        after: Ref | None = None
        while True:
            page = self.store.stage_histories_page(after, SWEEP_PAGE, [s.value for s in ACTIVE])
            yield from page
            if len(page) < SWEEP_PAGE:
                return
            after = page[-1][0]

    def _sweep_owner_gaps(self, work: PageWork) -> int:
        """Active follow-ups whose issue went unassigned past the triage SLA with nothing changing."""
        queued = 0
        for ref, history in self._active_histories():
            if not history or Stage(history[-1][0]) not in ACTIVE:
                continue
            ticket = self.store.get_snapshot(ref)
            if not isinstance(ticket, Ticket):
                continue
            meta = self.store.get_meta(ref)
            if meta.get("stage_cleared") or meta.get("followup_ticket"):
                continue
            route = self.mappings.route_for(ticket)
            if route is None:
                continue
            views = self._issue_views(ref, route)
            if not any(v.assignee is None and v.stage is not Stage.RESOLVED for v in views):
                continue
            plans = self._owner_gaps(ticket, route, Stage(history[-1][0]), views, meta)
            queued += self._write(work, ticket, None, Plan(), plans, {})
        return queued

    # -- demand on the issue --------------------------------------------------------------------------

    def update_demand(self, work: PageWork, issues: Sequence[Ref]) -> int:
        """Keep each issue's demand comment current: written only when its text changes."""
        snapshots = self.store.get_snapshots(issues)
        found = [issue for ref in dict.fromkeys(issues) if isinstance(issue := snapshots.get(ref), Issue)]
        metas = self.store.get_metas([issue.ref for issue in found])
        queued, changed = self._demand(work, found, {}, metas)
        self.store.put_metas({ref: {**metas[ref], **values} for ref, values in changed.items()})
        return queued

    def _page_demand(self, work: PageWork, issues: Sequence[Ref], tickets: Mapping[Ref, Ticket]) -> int:
        """:meth:`update_demand` within :meth:`update`: the page's issues, tickets and metas are
        not read again, and what it remembers is written with the page's other metas."""
        book = self._book
        assert book is not None
        missing = [ref for ref in issues if ref not in self._page_issues]
        if missing:  # linked by a plan of the page
            self._page_issues.update(self.store.get_snapshots(missing))
        found = [issue for ref in issues if isinstance(issue := self._page_issues.get(ref), Issue)]
        book.load_metas(issue.ref for issue in found)
        queued, changed = self._demand(work, found, tickets, {issue.ref: book.meta(issue.ref) for issue in found})
        for ref, values in changed.items():
            book.set_meta(ref, values)
        return queued

    def _demand(
        self, work: PageWork, found: list[Issue], held: Mapping[Ref, Ticket], metas: Mapping[Ref, dict]
    ) -> tuple[int, dict[Ref, dict]]:
        """The demand comments of ``found`` (``held``: tickets the caller holds, as stored; the
        others are read). Returns the writes queued and the meta values to remember by issue.

        The text is built only when its inputs changed since it was stored (the digest of
        :func:`~mappings.handoff_plan.demand_inputs`, remembered with a digest of the text it
        gave: a text set by another path, e.g. syncd.privacy, is built again), and written
        only when it differs from the stored one."""
        queued = 0
        # The issues' tickets and promises: read once for all of them.
        links = self.store.links_for_issues([issue.ref for issue in found])
        wanted = {row.ticket: None for rows in links.values() for row in rows}
        tickets: dict[Ref, Ticket | Issue] = self.store.get_snapshots([r for r in wanted if r not in held])
        tickets.update((r, held[r]) for r in wanted if r in held)
        promises = self.store.promises_for_issues([issue.ref for issue in found])
        changed: dict[Ref, dict] = {}
        for issue in found:
            ref = issue.ref
            linked = [t for row in links[ref] if isinstance(t := tickets.get(row.ticket), Ticket)]
            inputs = self._demand_inputs(issue, linked, promises[ref])
            if inputs is None:
                continue
            meta = metas[ref]
            stored = meta.get("demand_body")
            if stored is not None and meta.get("demand_inputs") == _inputs_mark(inputs[0], stored):
                continue  # built from these same inputs: the same text
            body = demand_body(issue, inputs[1], promises[ref], **inputs[2])
            mark = _inputs_mark(inputs[0], body)
            if stored == body:
                changed[ref] = {"demand_inputs": mark}
                continue
            version = int(meta.get("demand_version") or 0) + 1
            changed[ref] = {"demand_body": body, "demand_version": version, "demand_inputs": mark}
            # The snapshot says whether the issue is public (syncd.privacy marks it so the
            # moment its place turns public); the connector checks again on write.
            queued += work.commit(Plan(actions=[plan_demand(issue, body, version, private=not issue.public)]))
        return queued, changed

    def _demand_inputs(
        self, issue: Issue, linked: list[Ticket], promises: list[Promise]
    ) -> tuple[str, list[DemandTicket], dict] | None:
        """What the demand comment of ``issue`` is built from: the digest of its inputs, its
        tickets as the text counts them and the text's other arguments; None when it has none
        (no tracker, no linked ticket)."""
        tracker = self.ports.trackers.get(issue.ref.connector)
        if tracker is None or not linked:
            return None
        demand = []
        calendar = pr.ALWAYS
        for ticket in linked:
            route = self._route_for(ticket)
            severity = route.severity(ticket) if route else None
            rank = route.severity_order.index(severity) if route and severity in route.severity_order else None
            demand.append(DemandTicket(ticket, severity, rank))
            if route is not None and route.promises is not None:
                calendar = route.promises.calendar
        args: dict[str, Any] = {
            "private": not issue.public,
            "templates": self.mappings.default_templates(),
            "calendar": calendar,
            "fmt": tracker.text_format,
        }
        return demand_inputs(issue, demand, promises, **args), demand, args

    def demand_text(
        self, issue: Issue, linked: list[Ticket] | None = None, promises: list[Promise] | None = None
    ) -> str | None:
        """The demand comment's text for ``issue`` (opaque where ``issue.public``); None with no linked ticket.

        ``linked`` and ``promises``: its linked tickets and active promises, when the caller read them."""
        if linked is None:
            rows = self.store.links_for_issue(issue.ref)
            linked = [t for t in self.store.get_snapshots([r.ticket for r in rows]).values() if isinstance(t, Ticket)]
        if promises is None:
            promises = self.store.promises_for_issue(issue.ref)
        inputs = self._demand_inputs(issue, linked, promises)
        return None if inputs is None else demand_body(issue, inputs[1], promises, **inputs[2])

    # -- a handoff the tracker refused --------------------------------------------------------------------

    def tell_failed_handoffs(self) -> int:
        """Escalations whose create the tracker refused for good (a bad route, a missing
        permission; see syncd.delivery): the agent gets an internal note saying so and the
        stage field and tag show ``handoff_failed``. Once per refused create; returns the
        notes planned."""
        told = 0
        for row in self.store.refused_creates():
            ticket_ref = Ref(self.ports.helpdesk.name, str(row.payload.get("ticket")))
            ticket = self.store.get_snapshot(ticket_ref)
            with self.ports.work() as work:
                self.store.set_action_result(row.id, {**(row.result or {}), "told": True})
                if not isinstance(ticket, Ticket):
                    continue
                if (self.store.get_meta(ticket_ref).get("escalation") or {}).get("key") != row.key:
                    continue  # planned again since: the newer create is the one that counts
                route = self.mappings.route_for(ticket)
                tracker = self.ports.trackers.get(row.connector)
                templates = route.templates if route is not None else self.mappings.default_templates()
                plan = plan_handoff_failed(
                    ticket,
                    route=route.name if route is not None else "none",
                    tracker=tracker.label if tracker is not None else row.connector,
                    place=row.target,
                    why=str((row.result or {}).get("refused")),
                    template=templates["handoff_failed"],
                    shown=self.display.write(Stage.NEW, failed=True),
                    key=idempotency_key("handoff_failed", ticket.ref, row.key),
                    note_format=self.ports.settings.note_format,
                )
                self.store.set_meta(ticket_ref, handoff_failed=row.key)
                told += work.commit(plan)
                log.warning(
                    "handoff failed: the tracker refused to create the issue; the agent is told",
                    ticket=ticket.key,
                    tracker=row.connector,
                    place=row.target,
                    action=row.id,
                    error=row.last_error,
                )
        return told

    def escalate_again(self, ticket: Ticket) -> EscalatedAgain:
        """``syncd escalate``: plan the handoff of ``ticket`` (just read from the helpdesk)
        again, against the mappings as they are now.

        For a ticket whose earlier create the tracker refused (or that waits, unsent): the
        earlier create is dropped and a new one planned, with a key of its own, to wherever
        the route sends it now. Refused (SyncdError, nothing changed) when there is nothing
        to hand over: no route, not flagged, already linked, not complete, or a create that
        may have landed (in flight, or made and not linked yet)."""
        ref = ticket.ref
        route = self.mappings.route_for(ticket)
        if route is None:
            raise SyncdError(f"ticket {ticket.key}: no route of the mapping files takes it; nothing to hand over")
        if not route.is_flagged(ticket):
            raise SyncdError(f"ticket {ticket.key} is not flagged for product (route {route.name!r}); flag it first")
        linked = self.store.links_for_ticket(ref)
        if linked:
            issues = self.store.get_snapshots([r.issue for r in linked])
            keys = ", ".join(getattr(issues.get(r.issue), "key", r.issue.id) for r in linked)
            raise SyncdError(f"ticket {ticket.key} is already handed over: linked to {keys}")
        group = f"escalate:{ref}"
        earlier = self.store.group_actions(group)
        if any(r.state == "sending" for r in earlier):
            raise SyncdError(
                f"ticket {ticket.key}: its issue's create may have reached {route.tracker} (it was interrupted); "
                "run `syncd once` first, which looks for it"
            )
        uncertain = [r for r in earlier if r.state == "dead" and r.maybe_applied]
        if uncertain:
            raise SyncdError(
                f"ticket {ticket.key}: its issue's create (action {uncertain[-1].id}) may have reached "
                f"{route.tracker} before it failed; `syncd outbox retry {uncertain[-1].id}` looks for it first"
            )
        if any(r.state == "done" and (r.result or {}).get("linked") is None for r in earlier):
            raise SyncdError(f"ticket {ticket.key}: its issue was created; the next cycle links it")
        with self.ports.work() as work:
            dropped = self.store.drop_group(group, "not sent: the handoff was planned again (syncd escalate)")
            meta = self.store.get_meta(ref)
            tries = int(meta.get("escalation_tries") or 0) + 1
            self.store.set_meta(ref, escalation=None, escalation_tries=tries)
            self.store.put_snapshot(ticket)
            self.update(work, [ref])
            planned = self.store.get_meta(ref).get("escalation")
            if not planned:
                missing = self.store.get_meta(ref).get("missing")
                why = f"it is not complete (missing: {', '.join(missing)})" if missing else "it is not a new follow-up"
                raise SyncdError(f"ticket {ticket.key} cannot be handed over now: {why}")  # rolls back
            if meta.get("handoff_failed"):
                self.store.set_meta(ref, handoff_failed=None)
                write = self.display.write(Stage.NEW)
                if write and ticket.can_update:
                    key = idempotency_key("handoff_again", ref, tries)
                    work.commit(Plan(actions=[write.action(key, ref.connector, ref.id, ticket_group(ref))]))
            self.store.add_event(
                Event(
                    "escalating",
                    f"{ticket.key}: handoff planned again by hand, to {route.tracker} {route.team} "
                    f"(route {route.name}); {dropped} earlier create(s) not sent",
                    ref,
                    None,
                    {"route": route.name, "key": planned["key"], "dropped": dropped},
                )
            )
        return EscalatedAgain(route.name, route.tracker, route.team, dropped, [r.target for r in earlier])

    # -- after delivery: what a create made --------------------------------------------------------------

    def finish_created(self) -> int:
        """Link the issues escalations created and the follow-up tickets opened; returns how many."""
        finished = 0
        for row in self.store.unfinished_creates():
            new_id = (row.result or {}).get("id")
            if not new_id:
                continue
            try:
                write = stored(row)
                if isinstance(write, CreateIssue):
                    self._link_created_issue(row, write, str(new_id))
                elif isinstance(write, FollowUpTicket):
                    self._link_follow_up_ticket(row, str(new_id))
                finished += 1
            except (NotFound, Gone) as exc:  # deleted (or hidden) as soon as it was made
                log.error("created record not readable; its link is left for a person", action=row.id, error=str(exc))
                with self.store.transaction():
                    self.store.set_action_result(row.id, {**(row.result or {}), "linked": False, "error": str(exc)})
            except SyncdError as exc:  # passing: try again after the next delivery
                log.warning("could not read the created record yet", action=row.id, error=str(exc))
        return finished

    def _link_created_issue(self, row, write: CreateIssue, issue_id: str) -> None:
        tracker = self.ports.trackers[row.connector]
        # By key where the create told it: GitHub cannot read an issue by id alone after a restart.
        issue = tracker.get_issue((row.result or {}).get("key") or issue_id)
        ticket_ref = Ref(self.ports.helpdesk.name, str(write.ticket))
        ticket = self.store.get_snapshot(ticket_ref)
        with self.ports.work() as work:
            self.store.put_snapshot(issue)
            self.store.set_action_result(row.id, {**(row.result or {}), "linked": True})
            if not isinstance(ticket, Ticket):
                return
            self.store.add_event(
                Event(
                    "escalated",
                    f"{ticket.key}: {issue.key} created in {row.connector} ({row.target})",
                    ticket.ref,
                    issue.ref,
                    {"issue_key": issue.key},
                )
            )
            work.link(ticket, issue, "escalation")
            self.update(work, [ticket.ref])  # the link's ticket write takes the stage in

    def _link_follow_up_ticket(self, row, ticket_id: str) -> None:
        helpdesk = self.ports.helpdesk
        new = helpdesk.get_ticket(ticket_id)
        source_ref = Ref(row.connector, row.target)
        source = self.store.get_snapshot(source_ref)
        with self.ports.work() as work:
            self.store.put_snapshot(new)
            self.store.set_action_result(row.id, {**(row.result or {}), "linked": True})
            self.store.set_meta(source_ref, followup_ticket=new.ref.id)
            self.store.set_meta(new.ref, followup_of=source_ref.id)
            key = source.key if isinstance(source, Ticket) else str(source_ref)
            self.store.add_event(
                Event(
                    "followup_ticket",
                    f"{key}: follow-up ticket {new.key} opened",
                    source_ref,
                    None,
                    {"ticket": new.ref.id},
                )
            )
            issues = self.store.get_snapshots([r.issue for r in self.store.links_for_ticket(source_ref)])
            for issue in issues.values():
                if isinstance(issue, Issue):
                    self.store.add_link(Link(new.ref, issue.ref, "followup"))
            for promise in self.store.promises_for_ticket(source_ref, active=True):
                change = PromiseChange(promise.state, self.now, f"moved to follow-up ticket {new.key}")
                self._put_promise(
                    dataclasses.replace(promise, ticket=new.ref, history=promise.history + (change,)), new.key
                )
            self.update(work, [source_ref, new.ref])


def _inputs_mark(digest: str, body: str) -> str:
    """What a demand comment's meta remembers of how its text was built: the digest of its
    inputs and a digest of the text they gave."""
    return f"{digest}:{hashlib.sha256(body.encode()).hexdigest()[:12]}"


def _ticket_update(action: Action) -> TicketUpdate:
    """The ticket write a stage plan or the page queued (they queue nothing else for a ticket)."""
    if not isinstance(action.write, TicketUpdate):
        raise TypeError(f"{action.key}: expected a ticket update, got {action.op}")
    return action.write
