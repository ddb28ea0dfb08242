"""Delivery: send the outbox through the connectors, exactly once in effect.

An action is marked 'sending' (committed) before its request goes out. If the
process dies before the result is recorded, or the service's answer left it
unclear whether the write landed, the action is still 'sending' next time:
delivery then asks the service whether the write's marker is already there
before sending it again.

Ticket updates go out in bulk where the helpdesk writes many tickets at once
(``Helpdesk.bulk_updates``): every pending ticket update of a round, each
with its own body and marker, in as few requests as the helpdesk allows
(Zendesk: 100 tickets an Update Many, the jobs polled together). Elsewhere
updates with equal payloads (one issue moved; many tickets wait on it) go
through ``Helpdesk.update_tickets``. A batch is marked 'sending' before it
goes: after a crash in the middle of it, each ticket's marker is looked
for, as for a single write.

Failures: a write to an issue the tracker says is gone (deleted, or not
visible to syncd's account) is dropped with that reason, with every other
write waiting for the issue, and the engine ends the issue's links; a write
the service refused for good otherwise (closed ticket) goes to dead letter
at once; anything else is retried with exponential
backoff (and at least the service's Retry-After) until ``max_attempts``,
then goes to dead letter with its last error. Actions of one group (one
ticket, one issue) go out in order: a dead action holds the later ones back
until it is retried or dropped (``syncd outbox retry|drop``). An answer
that arrived but could not be read (wrong shape, not JSON) means the write
may have landed: the next attempt looks for its marker first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Literal, NamedTuple

import structlog

from connectors.base import (
    Connector,
    Helpdesk,
    OpaqueResult,
    OpaqueRewrite,
    TicketWrite,
    Tracker,
    Unsupported,
    WriteResult,
)
from syncd.errors import (
    ApiError,
    AuthError,
    ConfigError,
    Conflict,
    Gone,
    NotFound,
    PayloadError,
    RateLimited,
    SyncdError,
    TransientError,
)
from syncd.privacy import written_for
from syncd.progress import Progress
from syncd.ratelimits import Parking
from syncd.records import Event, Ref, Ticket, format_time
from syncd.store import OutboxRow, Store
from syncd.writes import (
    AttachTicket,
    CreateIssue,
    FollowUpTicket,
    IssueComment,
    MakeOpaque,
    TicketUpdate,
    UpsertComment,
    Write,
    stored,
)

log = structlog.get_logger("syncd.delivery")

BULK_MIN = 2  # fewer tickets than this go one by one

# Why a tracker refused an escalation's create for good (kept in the action's result).
NO_SUCH_PLACE = "no_such_place"  # no such team, project or repository, or not visible to syncd's account
PERMISSION = "permission"  # the account works but may not create issues there
REFUSED = "refused"  # any other refusal that sending again would not change


@dataclass
class DeliveryReport:
    done: int = 0
    already: int = 0  # found landed by marker after a crash
    failed: int = 0
    dead: int = 0
    requests_saved: int = 0
    errors: list[str] = field(default_factory=list)
    # Issues a write or a read found deleted or hidden (the connector raised Gone), with why.
    gone: dict[Ref, str] = field(default_factory=dict)
    dropped: int = 0  # writes to such issues, dropped (not failures)
    waiting: int = 0  # writes held back by a service's rate limit (not failed attempts)
    privacy_rewritten: int = 0  # texts made opaque in a place that turned public
    privacy_kept: int = 0  # texts left as they were there: someone edited them since syncd wrote them


class Deliverer:
    def __init__(
        self,
        store: Store,
        connectors: dict[str, Connector],
        *,
        max_attempts: int = 8,
        backoff_max: float = 3600.0,
        backoff_base: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        stop_requested: Callable[[], bool] = lambda: False,
        parking: Parking | None = None,
        progress: Callable[[], Progress | None] = lambda: None,
    ):
        self.store = store
        self.stop_requested = stop_requested
        self.connectors = connectors
        self.max_attempts = max_attempts
        self.backoff_max = backoff_max
        self.backoff_base = backoff_base
        self.clock = clock
        self.paused: dict[str, str] = {}  # connector -> why (credentials refused)
        # Connectors waiting out a rate limit: nothing is sent to them before its end.
        self.parking = parking if parking is not None else Parking(store, connectors, clock)
        self._drafts: dict[int, str] = {}  # create action id -> which draft went ("private"/"public")
        self.progress = progress  # the run's progress, if someone watches it

    def run(self, limit: int = 500) -> DeliveryReport:
        report = DeliveryReport()
        progress = self.progress()
        if progress is not None:
            counts = self.store.outbox_counts()
            progress.delivering(counts["pending"] + counts["sending"])
        # Each round takes the head of every group; repeat while heads finish.
        for _ in range(50):
            due = [
                a
                for a in self.store.due_actions(limit)
                if a.connector not in self.paused and self.parking.until(a.connector) is None
            ]
            if not due:
                break
            progressed = report.done + report.already
            for each, batch in self._batches(due):
                if self.stop_requested():
                    return report
                if batch[0].connector in self.paused or self.parking.until(batch[0].connector) is not None:
                    continue
                if each and len(batch) >= BULK_MIN:
                    self._deliver_each(batch, report)
                elif len(batch) >= BULK_MIN:
                    self._deliver_bulk(batch, report)
                else:
                    self._deliver_one(batch[0], report)
            if report.done + report.already == progressed:
                break  # nothing finished this round: the rest waits for backoff
        return report

    # -- batching -----------------------------------------------------------------

    def _batches(self, due: list[OutboxRow]) -> list[tuple[bool, list[OutboxRow]]]:
        """(each, rows): where the helpdesk writes many tickets at once, every pending
        ticket update of the round together (each=True: a body per ticket; the
        connector splits them into requests); elsewhere equal pending ticket
        updates together (≤100 a batch); everything else alone. A write that may
        have landed ('sending') goes alone, its marker looked for first."""
        groups: dict[str, list[OutboxRow]] = {}
        for row in due:
            connector = self.connectors.get(row.connector)
            write = stored(row)
            pending_update = isinstance(write, TicketUpdate) and row.state == "pending"
            if pending_update and isinstance(connector, Helpdesk) and connector.bulk_updates >= BULK_MIN:
                key = f"each:{row.connector}"
            elif (
                pending_update and isinstance(connector, Helpdesk) and isinstance(write, TicketUpdate) and write.marker
            ):
                key = f"bulk:{row.connector}:{json.dumps(write.payload(), sort_keys=True)}"
            else:
                key = f"one:{row.id}"
            groups.setdefault(key, []).append(row)
        return [
            (key.startswith("each:"), rows[i : i + 100] if not key.startswith("each:") else rows)
            for key, rows in groups.items()
            for i in (range(0, len(rows), 100) if not key.startswith("each:") else [0])
        ]

    # -- one action -----------------------------------------------------------------

    def _deliver_one(self, row: OutboxRow, report: DeliveryReport) -> None:
        connector = self.connectors.get(row.connector)
        if connector is None:
            self._fail(row, f"no connector named {row.connector!r} is configured", report, dead=True)
            return
        write = stored(row)
        route = ROUTES.get(type(write)) if write is not None else None
        if write is None or route is None or not route.accepts(connector):
            self._fail(row, f"outbox action {row.id}: {row.connector} cannot do {row.op!r}", report, dead=True)
            return
        marker = write.marker_for(row.key)
        if self._to_gone_issue(row, write, report):
            return
        sent = False
        try:
            found = route.landed(self, connector, row, write, marker) if row.state == "sending" else None
            if found is not None:
                self.store.mark_done(row.id, {"found_marker": True, **found})
                self._event(row, "delivered", "found already written (after an interruption)")
                report.already += 1
                self._sent(delivered=1)
                return
            self.store.mark_sending(row.id)
            sent = True
            result = route.send(self, connector, row, write, marker)
        except RateLimited as exc:
            self._wait(row, exc, report, sent=sent)
            return
        except AuthError as exc:
            if isinstance(write, CreateIssue) and self._credentials_work(connector):
                # The account works, but may not create issues where the route sends them.
                self._refused(
                    row, f"{exc} (the account's credentials work: it may not create there)", report, PERMISSION
                )
                return
            # Due again as soon as the credentials work (the pause holds it till then).
            self._pause(row.connector, str(exc), report)
            self.store.mark_failed(row.id, str(exc), retry_at=self.clock())
            return
        except Gone as exc:
            if write.drops_when_gone:
                self._drop_gone(row, str(exc), report)
            elif isinstance(write, CreateIssue):
                self._refused(row, str(exc), report, REFUSED)  # e.g. issues turned off in the repository
            else:
                self._fail(row, str(exc), report, dead=True)
            return
        except (Conflict, NotFound, Unsupported, ConfigError) as exc:
            # ConfigError: the write names something the service cannot take (a mapping's
            # field id that is not one): refused for good, kept in the dead letter with why.
            if isinstance(write, CreateIssue):
                self._refused(row, str(exc), report, NO_SUCH_PLACE if isinstance(exc, NotFound) else REFUSED)
            else:
                self._fail(row, str(exc), report, dead=True)
            return
        except PayloadError as exc:
            # The answer could not be read: the write may have landed.
            self._fail(row, str(exc), report, uncertain=True)
            return
        except TransientError as exc:
            self._fail(row, str(exc), report, uncertain=exc.maybe_applied, retry_after=exc.retry_after)
            return
        except ApiError as exc:
            if isinstance(write, CreateIssue):
                # Not transient (those are TransientError): sending the same create again gets the same answer.
                self._refused(row, str(exc), report, REFUSED)
            else:
                self._fail(row, str(exc), report)
            return
        self._done(row, result, report)

    # -- sending each kind of write (the table ROUTES below picks one) ----------------------------

    def _found_marker(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> dict | None:
        """What the interrupted write left, if it landed (None: it did not)."""
        assert isinstance(connector, (Helpdesk, Tracker))
        return {} if connector.find_marker(row.target, marker) else None

    def _found_created_issue(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> dict | None:
        """A create that landed: the new issue's id, found by its marker."""
        assert isinstance(connector, Tracker)
        created = connector.find_created(row.target, marker)
        return {"id": created} if created else None

    def _found_follow_up(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> dict | None:
        assert isinstance(connector, Helpdesk)
        created = connector.find_follow_up(row.target, marker)
        return {"id": created} if created else None

    def _never_found(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> dict | None:
        return None  # a rewrite sent again finds what it already rewrote and edits the rest

    def _update_ticket(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> WriteResult:
        assert isinstance(connector, Helpdesk) and isinstance(write, TicketUpdate)
        ref = Ref(row.connector, row.target)
        snapshot = self.store.get_snapshot(ref)
        # A tag removal computed from a snapshot older than syncd's own last
        # tag write (same second: the stamps cannot tell) would silently do
        # nothing: the ticket is read first until a poll has stored it since.
        stale = bool(write.remove_tags) and bool(self.store.get_meta(ref).get("tags_unseen"))
        hint = snapshot if isinstance(snapshot, Ticket) and not stale else None
        return connector.update_ticket(row.target, write, marker, current=hint)

    def _add_comment(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> WriteResult:
        assert isinstance(connector, Tracker) and isinstance(write, IssueComment)
        return connector.add_comment(row.target, write.body, marker)

    def _attach_ticket(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> WriteResult:
        assert isinstance(connector, Tracker) and isinstance(write, AttachTicket)
        return connector.attach_ticket(row.target, write.url, write.title, write.subtitle, marker)

    def _create_issue(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> WriteResult:
        assert isinstance(connector, Tracker) and isinstance(write, CreateIssue)
        # Which draft goes is decided now, by the tracker: the team may have turned public.
        which: Literal["private", "public"] = "private" if connector.is_private(row.target) else "public"
        self._drafts[row.id] = which
        return connector.create_issue(row.target, write.draft(which), marker)

    def _upsert_comment(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> WriteResult:
        assert isinstance(connector, Tracker) and isinstance(write, UpsertComment)
        return connector.upsert_comment(row.target, write.body, marker, write.slot, customer_data=write.customer_data)

    def _make_opaque(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> OpaqueResult:
        assert isinstance(connector, Tracker) and isinstance(write, MakeOpaque)
        rewrite = OpaqueRewrite(
            dict(write.slots),
            written_for(self.store, row.connector, row.target),
            dict(write.created) if write.created else None,
        )
        return connector.make_opaque(row.target, rewrite, marker)

    def _create_follow_up(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> WriteResult:
        assert isinstance(connector, Helpdesk) and isinstance(write, FollowUpTicket)
        return connector.create_follow_up(row.target, write, marker)

    # -- writes to an issue that is gone ------------------------------------------------

    def _to_gone_issue(self, row: OutboxRow, write: Write, report: DeliveryReport) -> bool:
        """A write to an issue the store holds a tombstone for is dropped unsent."""
        if not write.drops_when_gone:
            return False
        tombstone = self.store.gone_issue(Ref(row.connector, row.target))
        if tombstone is None:
            return False
        self._drop_gone(row, tombstone["reason"], report)
        return True

    def _drop_gone(self, row: OutboxRow, why: str, report: DeliveryReport) -> None:
        """The issue is deleted or hidden: this write and every other write waiting
        for the issue (its group) are dropped with the reason, not dead-lettered."""
        reason = f"not sent: the issue is deleted, or no longer visible to syncd's account ({why})"
        with self.store.transaction():
            dropped = self.store.drop_group(row.group, reason)
            self._event(row, "dropped", reason)
        report.dropped += dropped
        report.gone.setdefault(Ref(row.connector, row.target), why)
        log.info(
            "writes dropped: the issue is gone", action=row.id, op=row.op, target=row.target, dropped=dropped, why=why
        )

    # -- many tickets at once ----------------------------------------------------------

    def _deliver_each(self, rows: list[OutboxRow], report: DeliveryReport) -> None:
        """Pending ticket updates, each with its own body and marker, in the helpdesk's bulk writes."""
        helpdesk = self.connectors[rows[0].connector]
        assert isinstance(helpdesk, Helpdesk)
        writes = []
        with self.store.transaction():
            for row in rows:
                self.store.mark_sending(row.id)
        for row in rows:
            write = stored(row)
            assert isinstance(write, TicketUpdate), "only ticket updates are sent in bulk"
            ref = Ref(row.connector, row.target)
            snapshot = self.store.get_snapshot(ref)
            # As for one write: a snapshot that may not hold syncd's own last tags is no hint.
            stale = bool(write.remove_tags) and bool(self.store.get_meta(ref).get("tags_unseen"))
            hint = snapshot if isinstance(snapshot, Ticket) and not stale else None
            writes.append(TicketWrite(row.target, write, write.marker_for(row.key), hint))
        try:
            results = helpdesk.update_each(writes)
        except RateLimited as exc:
            for row in rows:
                self._wait(row, exc, report, sent=True)
            return
        except AuthError as exc:
            self._pause(helpdesk.name, str(exc), report)
            for row in rows:
                self.store.mark_failed(row.id, str(exc), retry_at=self.clock())
            return
        except SyncdError as exc:
            uncertain = isinstance(exc, TransientError) and exc.maybe_applied
            for row in rows:
                self._fail(row, str(exc), report, uncertain=uncertain)
            return
        requests = -(-len(rows) // max(1, helpdesk.bulk_updates))
        report.requests_saved += len(rows) - requests
        self._bulk_results({row.target: row for row in rows}, results, report)

    def _deliver_bulk(self, rows: list[OutboxRow], report: DeliveryReport) -> None:
        helpdesk = self.connectors[rows[0].connector]
        assert isinstance(helpdesk, Helpdesk)
        write = stored(rows[0])
        assert isinstance(write, TicketUpdate) and write.marker, "only marked ticket updates are sent in bulk"
        marker = write.marker
        with self.store.transaction():
            for row in rows:
                self.store.mark_sending(row.id)
        by_target = {row.target: row for row in rows}
        try:
            results = helpdesk.update_tickets(list(by_target), write, marker)
        except RateLimited as exc:
            for row in rows:
                self._wait(row, exc, report, sent=True)
            return
        except AuthError as exc:
            self._pause(helpdesk.name, str(exc), report)
            for row in rows:
                self.store.mark_failed(row.id, str(exc), retry_at=self.clock())
            return
        except SyncdError as exc:
            uncertain = isinstance(exc, TransientError) and exc.maybe_applied
            for row in rows:
                self._fail(row, str(exc), report, uncertain=uncertain)
            return
        report.requests_saved += len(rows) - 1
        self._bulk_results(by_target, results, report)

    def _bulk_results(
        self, by_target: dict[str, OutboxRow], results: dict[str, WriteResult | Exception], report: DeliveryReport
    ) -> None:
        """Each ticket's outcome of a bulk write; one without an answer may have landed."""
        for target, row in by_target.items():
            result = results.get(target)
            if isinstance(result, WriteResult):
                self._done(row, result, report)
            elif isinstance(result, RateLimited):
                self._wait(row, result, report, sent=True)
            elif isinstance(result, (Conflict, NotFound, Gone)):
                self._fail(row, str(result), report, dead=True)
            elif isinstance(result, TransientError):
                # Refused before it was applied (a 5xx answer): sent again in the next batch;
                # an answer lost after sending: its marker is looked for first.
                self._fail(row, str(result), report, uncertain=result.maybe_applied, retry_after=result.retry_after)
            else:
                self._fail(row, str(result or "no result for this ticket"), report, uncertain=True)

    # -- bookkeeping ---------------------------------------------------------------------

    def _done(self, row: OutboxRow, result: WriteResult | OpaqueResult, report: DeliveryReport) -> None:
        if isinstance(result, OpaqueResult):
            self._done_opaque(row, result, report)
            return
        with self.store.transaction():
            done = {"updated_at": format_time(result.updated_at), "id": result.id}
            if result.key:
                done["key"] = result.key
            if row.id in self._drafts:
                done["draft"] = self._drafts.pop(row.id)
            self.store.mark_done(row.id, done)
            write = stored(row)
            if isinstance(write, TicketUpdate) and result.updated_at is not None:
                # The next poll will see this write; it is ours, not news. Until it
                # does, the stored snapshot does not hold the tags written here.
                tags = bool(write.add_tags or write.remove_tags)
                self.store.set_meta(
                    Ref(row.connector, row.target),
                    echo_updated_at=format_time(result.updated_at),
                    **({"tags_unseen": True} if tags else {}),
                )
            elif isinstance(write, TicketUpdate) and write.note:
                # A bulk write answers no time: its echo is known by its note's marker.
                tags = bool(write.add_tags or write.remove_tags)
                self.store.set_meta(
                    Ref(row.connector, row.target),
                    echo_marker=write.marker_for(row.key),
                    **({"tags_unseen": True} if tags else {}),
                )
            self._event(row, "delivered", _describe(row, self.connectors.get(row.connector)))
        report.done += 1
        self._sent(delivered=1)

    def _done_opaque(self, row: OutboxRow, result: OpaqueResult, report: DeliveryReport) -> None:
        """A rewrite for a place that turned public: what it rewrote, and what it had to leave."""
        kept = [
            {"what": k.what, "url": k.url, "edited_by": k.edited_by, "edited_at": format_time(k.edited_at)}
            for k in result.kept
        ]
        with self.store.transaction():
            self.store.mark_done(
                row.id, {"rewritten": list(result.rewritten), "kept": kept, "comments": dict(result.comments)}
            )
            self._event(row, "delivered", _describe(row, result=result))
        report.done += 1
        self._sent(delivered=1)
        report.privacy_rewritten += len(result.rewritten)
        report.privacy_kept += len(kept)
        if kept:
            log.warning(
                "texts in a place now public were edited by someone else; left as they are",
                action=row.id,
                issue=row.target,
                kept=[k["what"] for k in kept],
            )

    def _fail(
        self,
        row: OutboxRow,
        error: str,
        report: DeliveryReport,
        *,
        dead: bool = False,
        uncertain: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self._drafts.pop(row.id, None)
        attempts = row.attempts + (0 if row.state == "sending" and dead else 1)
        dead = dead or attempts >= self.max_attempts
        retry_at = None if dead else self._retry_at(attempts, retry_after)
        with self.store.transaction():
            self.store.mark_failed(row.id, error, retry_at=retry_at, dead=dead, uncertain=uncertain)
            if dead:
                self._event(row, "dead_letter", f"gave up after {attempts} attempt(s): {error}")
        if dead:
            report.dead += 1
            log.error("action moved to dead letter", action=row.id, op=row.op, target=row.target, error=error)
        else:
            report.failed += 1
            log.warning(
                "action failed; will retry",
                action=row.id,
                op=row.op,
                target=row.target,
                error=error,
                retry_at=format_time(retry_at),
            )
        report.errors.append(error)
        self._sent(failed=1)

    def _sent(self, delivered: int = 0, failed: int = 0) -> None:
        progress = self.progress()
        if progress is not None:
            progress.sent(delivered, failed)

    def _refused(self, row: OutboxRow, error: str, report: DeliveryReport, why: str) -> None:
        """An escalation's create refused for good: dead at once, with why in words the
        handoff turns into a note for the agent (see Handoff.tell_failed_handoffs)."""
        self._fail(row, error, report, dead=True)
        self.store.set_action_result(row.id, {"refused": why})

    def _credentials_work(self, connector: Connector) -> bool:
        """Whether the connector's credentials are accepted (one cheap check)."""
        try:
            connector.check()
        except SyncdError:
            return False
        return True

    def _retry_at(self, attempts: int, retry_after: float | None = None) -> datetime:
        delay = min(self.backoff_max, self.backoff_base * (2 ** max(0, attempts - 1)))
        if retry_after is not None:
            delay = max(delay, retry_after)
        return self.clock() + timedelta(seconds=delay)

    def _wait(self, row: OutboxRow, exc: RateLimited, report: DeliveryReport, *, sent: bool) -> None:
        """The service's rate limit held the write back: due again at its end, and
        not counted as a failed attempt. A write that was sent stays 'sending'
        (an operation of several requests may have made part of it): its marker
        is looked for first."""
        self.parking.park(exc)
        self.store.mark_waiting(
            row.id, str(exc), until=exc.until, refund=sent, uncertain=sent or row.state == "sending"
        )
        report.waiting += 1

    def _pause(self, connector: str, why: str, report: DeliveryReport) -> None:
        if connector not in self.paused:
            log.error("credentials refused; delivery to this connector paused", connector=connector, error=why)
        self.paused[connector] = why
        report.errors.append(why)

    def _event(self, row: OutboxRow, kind: str, summary: str) -> None:
        ticket = issue = None
        ref = Ref(row.connector, row.target)
        write = stored(row)
        target_kind = write.target_kind if write is not None else "issue"
        if target_kind == "ticket":
            ticket = ref
        elif target_kind == "team":
            # The target is a team; the event belongs to the escalated ticket.
            helpdesk = next((c.name for c in self.connectors.values() if isinstance(c, Helpdesk)), None)
            escalated = write.ticket if isinstance(write, CreateIssue) else None
            ticket = Ref(helpdesk, str(escalated)) if helpdesk else None
        else:
            issue = ref
        self.store.add_event(Event(kind, summary, ticket, issue, {"action": row.id, "op": row.op, "key": row.key}))


class Route(NamedTuple):
    """How delivery sends one kind of write, and how it finds whether an interrupted one landed."""

    send: Callable[[Deliverer, Connector, OutboxRow, Any, str], WriteResult | OpaqueResult]
    landed: Callable[[Deliverer, Connector, OutboxRow, Any, str], dict | None]
    accepts: Callable[[Connector], bool]  # which connectors take it


def _helpdesk(connector: Connector) -> bool:
    return isinstance(connector, Helpdesk)


def _tracker(connector: Connector) -> bool:
    return isinstance(connector, Tracker)


def _tracker_seeing_visibility(connector: Connector) -> bool:
    return isinstance(connector, Tracker) and connector.reports_visibility


# One row per kind of write: adding a kind is a dataclass in syncd/writes.py, a row here and the connector method.
ROUTES: dict[type[Write], Route] = {
    TicketUpdate: Route(Deliverer._update_ticket, Deliverer._found_marker, _helpdesk),
    FollowUpTicket: Route(Deliverer._create_follow_up, Deliverer._found_follow_up, _helpdesk),
    IssueComment: Route(Deliverer._add_comment, Deliverer._found_marker, _tracker),
    AttachTicket: Route(Deliverer._attach_ticket, Deliverer._found_marker, _tracker),
    CreateIssue: Route(Deliverer._create_issue, Deliverer._found_created_issue, _tracker),
    UpsertComment: Route(Deliverer._upsert_comment, Deliverer._found_marker, _tracker),
    MakeOpaque: Route(Deliverer._make_opaque, Deliverer._never_found, _tracker_seeing_visibility),
}


def describe_write(row: OutboxRow, connector: Connector | None = None) -> str:
    """What an outbox row writes, as a person reads it (``syncd once --dry-run``, the history)."""
    return _describe(row, connector)


def _describe(row: OutboxRow, connector: Connector | None = None, result: OpaqueResult | None = None) -> str:
    """One history line for a delivered write, as a person reads it: the text
    as the place it went shows it (no Markdown escapes, no hidden markers)."""
    write = stored(row)
    if write is None:
        return row.op
    if isinstance(write, MakeOpaque):
        return write.describe(row.target, result=result)
    text_format = connector.text_format if isinstance(connector, (Helpdesk, Tracker)) else "plain"
    attachment_format = connector.attachment_format if isinstance(connector, Tracker) else "plain"
    return write.describe(row.target, text_format=text_format, attachment_format=attachment_format)
