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
Comments and attachments for a tracker that takes several writes a
request (``Tracker.write_batch``: Linear's aliased mutations) go out
together, up to that many, one write per issue (the head of each issue's
queue), and slot comments with them where ``Tracker.batches_slots``; after a
crash in the middle of a batch, the markers of all its writes are looked for
together (``Tracker.landed_batch``) and only those not found are sent again.
A slot comment's write is told what the store knows of the comment
(:class:`~connectors.base.SlotRecord`, kept in the issue's bookkeeping under
``slot_comments``: noted before the request goes, its id once delivered), so
that the tracker reads nothing the store answers.

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
    BatchedWrite,
    Connector,
    Helpdesk,
    OpaqueResult,
    OpaqueRewrite,
    SlotRecord,
    TicketWrite,
    Tracker,
    Unsupported,
    WriteResult,
)
from mappings.conversation_plan import plan_refused
from syncd.errors import (
    ApiError,
    AuthError,
    BudgetSpent,
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
from syncd.records import Event, Issue, Ref, Ticket, format_time
from syncd.store import OutboxRow, Store
from syncd.writes import (
    AttachTicket,
    CreateIssue,
    FollowUpTicket,
    IssueComment,
    MakeOpaque,
    MirrorComment,
    MirrorNote,
    TicketUpdate,
    UpsertComment,
    Write,
    stored,
)

log = structlog.get_logger("syncd.delivery")

BULK_MIN = 2  # fewer tickets than this go one by one
# The issue's bookkeeping key that says which slot comments syncd wrote there:
# {slot: the comment's id, or None while not known (sent, answer not heard)}.
SLOT_META = "slot_comments"
# The store's bookkeeping record (connector, this id) that keeps when a paced service's
# budgeted writes went: {"sent": [epoch seconds, ...]}, the longest window's worth.
BUDGET_RECORD = "~write-budget"

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
        # Writes of a batch that another write's refusal left unanswered, due again at once.
        self._requeued = 0
        # Connectors whose write budget (GitHub's content limits) is spent, until when: their
        # writes wait, their reads and polls go on (no parking).
        self.budget_spent: dict[str, datetime] = {}
        self._budgets_loaded = False

    def run(self, limit: int = 500) -> DeliveryReport:
        self._load_budgets()
        try:
            return self._run(limit)
        finally:
            self._save_budgets()

    def _load_budgets(self) -> None:
        """The writes a paced service's budget counted in earlier runs (a new ``syncd
        once`` must not start its windows afresh), from the store, once per process."""
        if self._budgets_loaded:
            return
        self._budgets_loaded = True
        for name, connector in self.connectors.items():
            if connector.http.write_budget is None:
                continue
            try:
                saved = self.store.get_meta(Ref(name, BUDGET_RECORD)).get("sent") or []
            except SyncdError:
                continue
            times = sorted({float(t) for t in saved if isinstance(t, (int, float))} | set(connector.http.budget_sent))
            connector.http.budget_sent.clear()
            connector.http.budget_sent.extend(times)

    def _save_budgets(self) -> None:
        if self.store.readonly:
            return
        for name, connector in self.connectors.items():
            http = connector.http
            if http.write_budget is None:
                continue
            longest = max((seconds for _, seconds in http.write_budget.windows), default=0.0)
            now = self.clock().timestamp()
            recent = [round(t, 3) for t in http.budget_sent if t > now - longest]
            try:
                self.store.set_meta(Ref(name, BUDGET_RECORD), sent=recent)
            except SyncdError as exc:
                log.warning("could not record the paced writes in the store", connector=name, error=str(exc))

    def _run(self, limit: int) -> DeliveryReport:
        report = DeliveryReport()
        progress = self.progress()
        if progress is not None:
            counts = self.store.outbox_counts()
            progress.delivering(counts["pending"] + counts["sending"])
            self._tell_paced(progress)
        # Each round takes the head of every group; repeat while heads finish.
        for _ in range(50):
            due = [
                a
                for a in self.store.due_actions(limit)
                if a.connector not in self.paused
                and self.parking.until(a.connector) is None
                and not self._budget_spent(a.connector)
            ]
            if not due:
                break
            progressed = report.done + report.already + report.dropped + self._requeued
            batched, due = tracker_batches(due, self.connectors, self._followers)
            held: set[str] = set()  # groups a failure in an earlier batch of this round holds back
            for rows in batched:
                if self.stop_requested():
                    return report
                if rows[0].connector in self.paused or self.parking.until(rows[0].connector) is not None:
                    continue
                if self._budget_spent(rows[0].connector):
                    continue
                self._deliver_tracker_batch([r for r in rows if r.group not in held], report, held)
            for each, batch in self._batches(due):
                if self.stop_requested():
                    return report
                if batch[0].connector in self.paused or self.parking.until(batch[0].connector) is not None:
                    continue
                if self._budget_spent(batch[0].connector):
                    continue
                if each and len(batch) >= BULK_MIN:
                    self._deliver_each(batch, report)
                elif len(batch) >= BULK_MIN:
                    self._deliver_bulk(batch, report)
                else:
                    self._deliver_one(batch[0], report)
            if report.done + report.already + report.dropped + self._requeued == progressed:
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
            if not self.store.mark_sending(row.id):
                return  # another replica holds it now (its claim lapsed here): that one sends it
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
            if isinstance(write, MirrorComment) and isinstance(exc, Conflict):
                self._tell_refused(row, write)  # an agent's note refused where the place turned public
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
        known = self._slot_record(row, write)
        self._slot_sending([(row, write)])
        return connector.upsert_comment(
            row.target, write.body, marker, write.slot, customer_data=write.customer_data, known=known
        )

    def _slot_record(self, row: OutboxRow, write: UpsertComment) -> SlotRecord:
        """What the store knows of syncd's comment of the write's slot on the issue."""
        slots = self.store.get_meta(Ref(row.connector, row.target)).get(SLOT_META)
        if not isinstance(slots, dict) or write.slot not in slots:
            return SlotRecord(written=False)
        comment = slots[write.slot]
        return SlotRecord(written=True, comment_id=comment if isinstance(comment, str) and comment else None)

    def _slot_sending(self, writes: list[tuple[OutboxRow, UpsertComment]]) -> None:
        """Note, before the request goes, that a write of each slot is sent (committed): from
        then on the store no longer vouches that the issue holds no comment of syncd's there.
        A comment id already known is kept (an edit keeps the comment)."""
        with self.store.transaction():
            for row, write in writes:
                ref = Ref(row.connector, row.target)
                slots = self.store.get_meta(ref).get(SLOT_META)
                slots = dict(slots) if isinstance(slots, dict) else {}
                if write.slot not in slots:
                    slots[write.slot] = ""
                    self.store.set_meta(ref, **{SLOT_META: slots})

    def _make_opaque(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> OpaqueResult:
        assert isinstance(connector, Tracker) and isinstance(write, MakeOpaque)
        rewrite = OpaqueRewrite(
            dict(write.slots),
            written_for(self.store, row.connector, row.target),
            dict(write.created) if write.created else None,
        )
        return connector.make_opaque(row.target, rewrite, marker)

    def _mirror_note(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> WriteResult:
        assert isinstance(connector, Helpdesk) and isinstance(write, MirrorNote)
        return connector.update_ticket(row.target, write.update(), marker)

    def _mirror_comment(self, connector: Connector, row: OutboxRow, write: Write, marker: str) -> WriteResult:
        assert isinstance(connector, Tracker) and isinstance(write, MirrorComment)
        # Composed in full for a private place: refused if the place turned public since (never sent there).
        return connector.add_comment(row.target, write.body, marker, customer_data=not write.public)

    def _tell_refused(self, row: OutboxRow, write: MirrorComment) -> None:
        """The agent whose mirrored note the tracker refused is told, on the ticket (sent in a later run)."""
        helpdesk = next((c for c in self.connectors.values() if isinstance(c, Helpdesk)), None)
        if helpdesk is None or not write.ticket:
            return
        issue = self.store.get_snapshot(Ref(row.connector, row.target))
        key = issue.key if isinstance(issue, Issue) else row.target
        with self.store.transaction():
            self.store.enqueue(plan_refused(Ref(helpdesk.name, write.ticket), write, key, helpdesk.text_format))

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
        rows = self._claim(rows)
        if not rows:
            return
        writes = []
        for row in rows:
            write = stored(row)
            assert isinstance(write, TicketUpdate), "only ticket updates are sent in bulk"
            ref = Ref(row.connector, row.target)
            snapshot = self.store.get_snapshot(ref)
            # As for one write: a snapshot that may not hold syncd's own last tags is no hint.
            stale = bool(write.remove_tags) and bool(self.store.get_meta(ref).get("tags_unseen"))
            hint = snapshot if isinstance(snapshot, Ticket) and not stale else None
            writes.append(TicketWrite(row.target, write, write.marker_for(row.key), hint))
        results = self._send_many(helpdesk, rows, lambda: helpdesk.update_each(writes), report)
        if results is None:
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
        rows = self._claim(rows)
        if not rows:
            return
        by_target = {row.target: row for row in rows}
        results = self._send_many(
            helpdesk, rows, lambda: helpdesk.update_tickets(list(by_target), write, marker), report
        )
        if results is None:
            return
        report.requests_saved += len(rows) - 1
        self._bulk_results(by_target, results, report)

    def _claim(self, rows: list[OutboxRow]) -> list[OutboxRow]:
        """Mark a batch 'sending' (committed) before it goes; rows another replica took
        over (their claim lapsed here) are left to it."""
        with self.store.transaction():
            return [row for row in rows if self.store.mark_sending(row.id)]

    def _send_many(
        self,
        helpdesk: Helpdesk,
        rows: list[OutboxRow],
        send: Callable[[], dict[str, WriteResult | Exception]],
        report: DeliveryReport,
    ) -> dict[str, WriteResult | Exception] | None:
        """One bulk send for ``rows``; None when the whole batch failed (each row recorded as
        for a single write: waiting out a rate limit, paused on refused credentials, or failed,
        its marker looked for first where the batch may have landed)."""
        try:
            return send()
        except RateLimited as exc:
            for row in rows:
                self._wait(row, exc, report, sent=True)
        except AuthError as exc:
            self._pause(helpdesk.name, str(exc), report)
            for row in rows:
                self.store.mark_failed(row.id, str(exc), retry_at=self.clock())
        except SyncdError as exc:
            uncertain = isinstance(exc, TransientError) and exc.maybe_applied
            for row in rows:
                self._fail(row, str(exc), report, uncertain=uncertain)
        return None

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

    # -- many comments and attachments in one tracker request -------------------------------

    def _followers(self, head: OutboxRow) -> list[OutboxRow]:
        """The pending writes due behind ``head`` in its group, in order, up to the first that is not."""
        now = self.clock()
        out: list[OutboxRow] = []
        for row in self.store.open_actions(head.group):
            if row.id <= head.id:
                continue
            if row.state != "pending" or row.next_attempt_at > now or row.connector != head.connector:
                break
            out.append(row)
        return out

    def _deliver_tracker_batch(self, rows: list[OutboxRow], report: DeliveryReport, held: set[str]) -> None:
        """Send a batch (writes of one group in their order); a group whose write did
        not go through is added to ``held`` so that its later writes wait."""
        if not rows:
            return
        tracker = self.connectors[rows[0].connector]
        assert isinstance(tracker, Tracker)
        if tracker.write_batch <= 1 and tracker.attaches_many:
            self._deliver_attachments(tracker, rows, report, held)
            return
        live: list[tuple[OutboxRow, BatchedWrite]] = []
        for row in rows:
            write = stored(row)
            assert isinstance(write, (IssueComment, AttachTicket, UpsertComment)), "not a write that is batched"
            if not self._to_gone_issue(row, write, report):
                slot = self._slot_record(row, write) if isinstance(write, UpsertComment) else None
                live.append((row, BatchedWrite(row.target, write.marker_for(row.key), write, slot)))
        interrupted = [(row, w) for row, w in live if row.state == "sending"]
        if interrupted:
            try:
                landed = tracker.landed_batch([w for _, w in interrupted])
            except SyncdError as exc:
                held.update(row.group for row, _ in live)
                self._batch_failed([row for row, _ in live], exc, report, sent=False)
                return
            found = {row.id for (row, _), hit in zip(interrupted, landed) if hit}
            for row, _ in interrupted:
                if row.id in found:
                    self.store.mark_done(row.id, {"found_marker": True})
                    self._event(row, "delivered", "found already written (after an interruption)")
                    report.already += 1
                    self._sent(delivered=1)
            live = [(row, w) for row, w in live if row.id not in found]
        if not live:
            return
        with self.store.transaction():
            for row, _ in live:
                self.store.mark_sending(row.id)
            self._slot_sending([(row, w.write) for row, w in live if isinstance(w.write, UpsertComment)])
        try:
            results = tracker.send_batch([w for _, w in live])
        except SyncdError as exc:
            held.update(row.group for row, _ in live)
            self._batch_failed([row for row, _ in live], exc, report, sent=True)
            return
        report.requests_saved += len(live) - 1
        for (row, _), result in zip(live, results):
            if isinstance(result, WriteResult):
                self._done(row, result, report)
                continue
            held.add(row.group)  # the group's later writes wait for this one
            if isinstance(result, Gone):
                self._drop_gone(row, str(result), report)
            elif isinstance(result, TransientError) and result.maybe_applied:
                # Not run, or its answer lost: looked for by its marker in the next round, no attempt spent.
                self.store.mark_waiting(row.id, str(result), until=self.clock(), refund=True, uncertain=True)
                self._requeued += 1
            elif isinstance(result, (Conflict, NotFound, Unsupported, ConfigError)):
                self._fail(row, str(result), report, dead=True)
            else:
                self._fail(row, str(result), report, uncertain=isinstance(result, PayloadError))

    def _deliver_attachments(
        self, tracker: Tracker, rows: list[OutboxRow], report: DeliveryReport, held: set[str]
    ) -> None:
        """Several tickets shown on one issue in one write (rows of one group, in order):
        an interrupted one is looked for first, as alone; the rest go together, marked
        with the last one's key."""
        head = stored(rows[0])
        if head is not None and self._to_gone_issue(rows[0], head, report):
            return  # the whole group is dropped
        live: list[tuple[OutboxRow, AttachTicket]] = []
        for row in rows:
            write = stored(row)
            assert isinstance(write, AttachTicket)
            if row.state == "sending":
                try:
                    landed = tracker.find_marker(row.target, write.marker_for(row.key))
                except SyncdError as exc:
                    held.add(row.group)
                    self._batch_failed([r for r in rows if r.id >= row.id], exc, report, sent=False)
                    return
                if landed:
                    self.store.mark_done(row.id, {"found_marker": True})
                    self._event(row, "delivered", "found already written (after an interruption)")
                    report.already += 1
                    self._sent(delivered=1)
                    continue
            live.append((row, write))
        if not live:
            return
        last_row, last = live[-1]
        with self.store.transaction():
            for row, _ in live:
                self.store.mark_sending(row.id)
        try:
            result = tracker.attach_tickets(
                last_row.target, [(w.url, w.title, w.subtitle) for _, w in live], last.marker_for(last_row.key)
            )
        except Gone as exc:
            self._drop_gone(last_row, str(exc), report)
            return
        except SyncdError as exc:
            held.add(last_row.group)
            self._batch_failed([row for row, _ in live], exc, report, sent=True)
            return
        report.requests_saved += len(live) - 1
        for row, _ in live:
            self._done(row, result, report)

    def _batch_failed(self, rows: list[OutboxRow], exc: SyncdError, report: DeliveryReport, *, sent: bool) -> None:
        """A batch's request failed as a whole: each write is handled as a single one would be."""
        if isinstance(exc, RateLimited):
            for row in rows:
                self._wait(row, exc, report, sent=sent)
        elif isinstance(exc, AuthError):
            self._pause(rows[0].connector, str(exc), report)
            for row in rows:
                uncertain = row.state == "sending" or sent
                self.store.mark_failed(row.id, str(exc), retry_at=self.clock(), uncertain=uncertain)
        elif isinstance(exc, Gone):
            for row in rows:
                self._drop_gone(row, str(exc), report)
        elif isinstance(exc, (Conflict, NotFound, Unsupported, ConfigError)):
            for row in rows:
                self._fail(row, str(exc), report, dead=True)
        else:
            maybe = isinstance(exc, PayloadError) or (isinstance(exc, TransientError) and exc.maybe_applied)
            for row in rows:
                self._fail(row, str(exc), report, uncertain=row.state == "sending" or (sent and maybe))

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
            if isinstance(write, UpsertComment) and result.id:
                ref = Ref(row.connector, row.target)
                slots = self.store.get_meta(ref).get(SLOT_META)
                slots = dict(slots) if isinstance(slots, dict) else {}
                if slots.get(write.slot) != result.id:
                    slots[write.slot] = result.id
                    self.store.set_meta(ref, **{SLOT_META: slots})
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

    def _budget_spent(self, connector: str) -> bool:
        until = self.budget_spent.get(connector)
        if until is not None and self.clock() >= until:
            del self.budget_spent[connector]
            return False
        return until is not None

    def _tell_paced(self, progress: Progress) -> None:
        """The writes due to each service syncd paces by its limits, and when they will be done."""
        for name, connector in self.connectors.items():
            if connector.http.write_budget is None:
                continue
            due = self.store.unfinished_count(name)
            done_by = connector.http.writes_done_by(due)
            spent = self.budget_spent.get(name)
            if done_by is not None:
                progress.paced(connector.label, due, max(done_by, spent) if spent else done_by)

    def _wait(self, row: OutboxRow, exc: RateLimited, report: DeliveryReport, *, sent: bool) -> None:
        """The service's rate limit held the write back: due again at its end, and
        not counted as a failed attempt. A write that was sent stays 'sending'
        (an operation of several requests may have made part of it): its marker
        is looked for first. A spent write budget (BudgetSpent) sent nothing and
        parks nothing: the connector's writes wait till its end, its polls go on."""
        if isinstance(exc, BudgetSpent):
            self.budget_spent[row.connector] = max(exc.until, self.budget_spent.get(row.connector, exc.until))
            self.store.mark_waiting(row.id, str(exc), until=exc.until, refund=True, uncertain=row.state == "sending")
            report.waiting += 1
            progress = self.progress()
            if progress is not None:
                progress.waiting(exc.service, until=exc.until)
                self._tell_paced(progress)
            log.info(
                f"{exc.service} allows no more comments for now; its writes wait",
                connector=row.connector,
                until=format_time(exc.until),
            )
            return
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


def tracker_batches(
    due: list[OutboxRow],
    connectors: dict[str, Connector],
    followers: Callable[[OutboxRow], list[OutboxRow]] = lambda head: [],
) -> tuple[list[list[OutboxRow]], list[OutboxRow]]:
    """(batches, the rest): the comments and attachments (and slot comments, where
    ``Tracker.batches_slots``) due for each tracker that takes several a request
    (``Tracker.write_batch``), in batches of at most that many; a lone one, and
    every other write, stays in the rest. ``due`` holds the head of each group;
    ``followers`` gives the writes due behind a head, which join it in order (the
    tracker runs a batch's writes in order) while they can be batched too."""

    def batchable(row: OutboxRow) -> bool:
        connector = connectors.get(row.connector)
        if not isinstance(connector, Tracker) or connector.write_batch <= 1:
            return False
        kinds: tuple[type[Write], ...] = (IssueComment, AttachTicket)
        if connector.batches_slots:
            kinds = (*kinds, UpsertComment)
        return isinstance(stored(row), kinds)

    def one_write(row: OutboxRow) -> bool:
        connector = connectors.get(row.connector)
        return isinstance(connector, Tracker) and connector.attaches_many and isinstance(stored(row), AttachTicket)

    by_tracker: dict[str, list[OutboxRow]] = {}
    rest: list[OutboxRow] = []
    batches: list[list[OutboxRow]] = []
    for row in due:
        if one_write(row):
            # The tickets shown on one issue, in one write: the head and the attachments behind it.
            same = [row]
            for follower in followers(row):
                if not one_write(follower) or follower.target != row.target:
                    break
                same.append(follower)
            if len(same) > 1:
                batches.append(same)
            else:
                rest.append(row)
        elif batchable(row):
            queue = by_tracker.setdefault(row.connector, [])
            queue.append(row)
            for follower in followers(row):
                if not batchable(follower):
                    break
                queue.append(follower)
        else:
            rest.append(row)
    for name, rows in by_tracker.items():
        tracker = connectors[name]
        assert isinstance(tracker, Tracker)
        size = tracker.write_batch
        for i in range(0, len(rows), size):
            chunk = rows[i : i + size]
            if len(chunk) > 1:
                batches.append(chunk)
            else:
                rest.extend(chunk)
    return batches, rest


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
    MirrorNote: Route(Deliverer._mirror_note, Deliverer._found_marker, _helpdesk),
    MirrorComment: Route(Deliverer._mirror_comment, Deliverer._found_marker, _tracker),
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
