"""One sync cycle: poll → record → map → plan → commit, then deliver.

Per page of a feed, everything the page decides (snapshots, links, planned
outbox actions, events, quarantined records and the advanced cursor) is
written in ONE store transaction, through the page's
:class:`~syncd.page.PageWork`. Reads that planning needs (a ticket's new
comments, an issue named by key) happen before that transaction; writes to
the services happen after it, from the outbox (see :mod:`syncd.delivery`).
A crash before the commit replays the page; after it, the actions wait.
"""

from __future__ import annotations

import gc
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator

import structlog

from connectors.base import CommentAsk, CommentPresence, Connector, Helpdesk, Page, Presence, Rejected, Tracker
from mappings.conversation_plan import (
    IssueSide,
    Mirrored,
    MirrorTarget,
    plan_agent_note,
    plan_remark,
    remark_ref,
    selected_words,
)
from mappings.links import (
    Candidate,
    compile_patterns,
    issue_ticket_ids,
    noted_refs,
    syncd_attached_ticket_ids,
    ticket_candidates,
    unmatched_link_fields,
)
from mappings.planner import (
    GONE_REASON,
    LinkedTicket,
    Plan,
    PlanSettings,
    attach_key,
    issue_group,
    link_key,
    plan_gone_ref,
    plan_issue_gone,
    plan_issue_update,
    plan_out_of_reach,
    plan_unlink,
    ticket_group,
)
from mappings.routes import Mappings, Route
from syncd.delivery import Deliverer, DeliveryReport
from syncd.errors import AuthError, Gone, NotFound, PayloadError, RateLimited, SyncdError, until_text
from syncd.handoff import EscalatedAgain, Handoff
from syncd.page import PageWork, PollReport, Ports
from syncd.privacy import Privacy
from syncd.progress import Progress
from syncd.ratelimits import Parking, Wait
from syncd.records import Comment, Event, Issue, IssueRemark, Link, Ref, Ticket, format_time, to_dict
from syncd.store import LinkRow, Store
from syncd.writes import (
    Action,
    AttachTicket,
    TicketUpdate,
    stored,
)

log = structlog.get_logger("syncd.engine")

# A quarantined record is read again by id on this many later polls (a bad
# answer may have been a passing fault); after that it waits until it changes.
QUARANTINE_RETRIES = 3

# Where the store keeps when each route's conversation rule was switched on (record_meta):
# not a connector name (those are lower-case letters, digits and _), so never one's record.
RULES = "conversation-rules"

# Delivery runs per cycle that act on what the previous run found (see Engine.deliver).
DELIVERY_ROUNDS = 3


_paused = 0  # pages in progress (threads) with the cyclic garbage collector paused
_paused_lock = threading.Lock()
_resume = False  # whether the collector was on when the first of them paused it
# While pages of several threads overlap the collector may stay paused past any one page:
# a page that ends with more than this many objects allocated and not freed since the last
# collection runs one itself, so that cyclic garbage cannot grow without bound.
PAUSED_ALLOCATIONS_MAX = 1_000_000


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for one page's work, then running as before.

    A page allocates thousands of short-lived objects (its records, links, plans); each
    few hundred of them start a collection, and every so often one walks every object the
    process holds, which on a page of 1,000 tickets cost as much as the page's own work.
    What a page leaves is freed as it goes by reference counting (its records hold no
    cycles); the collector runs again after the page, from where it was."""
    global _paused, _resume
    with _paused_lock:
        if _paused == 0:
            _resume = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0 and _resume:
                gc.enable()
            collect = _paused > 0 and _resume and gc.get_count()[0] > PAUSED_ALLOCATIONS_MAX
        if collect:
            gc.collect()


def paused_pages(pages: Iterable[Page]) -> Iterator[Page]:
    """A feed's pages, each read (its answers parsed into records) with the collector paused."""
    it = iter(pages)
    while True:
        with collector_paused():
            page = next(it, None)
        if page is None:
            return
        yield page


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def seen_already(previous: Ticket | Issue | None, record: Ticket | Issue) -> bool:
    """Whether a record from a feed brings nothing new (overlapping windows).

    Equal timestamps are not enough: Zendesk's are whole seconds, and two
    changes within one second must not be taken for one. For a ticket even an
    equal record is not enough: a new comment changes nothing in the ticket
    but its timestamp, so a ticket listed again in the same second is read.
    """
    if previous is None:
        return False
    if previous.updated_at > record.updated_at:
        return True
    return isinstance(record, Issue) and previous == record


def only_echo(previous: Issue, issue: Issue) -> bool:
    """Whether nothing but syncd's own writes moved the issue (its time, its own links): not news."""

    def by_people(i: Issue) -> Issue:
        return replace(i, updated_at=previous.updated_at, attachments=tuple(a for a in i.attachments if not a.marker))

    return by_people(issue) == by_people(previous)


@dataclass
class CycleReport:
    polls: list[PollReport] = field(default_factory=list)
    delivery: DeliveryReport | None = None
    # Connectors parked for a rate limit when the cycle ended (not an error:
    # nothing is sent to them before the end; the next run goes on from there).
    rate_limited: dict[str, Wait] = field(default_factory=dict)
    now: datetime | None = None
    # The outbox by state when the cycle ended (what is left to deliver).
    outbox: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(p.error for p in self.polls) and not (self.delivery and self.delivery.errors)

    @property
    def pending(self) -> int:
        """Writes not delivered when the cycle ended (waiting for a rate limit, a retry, or planned only)."""
        return self.outbox.get("pending", 0) + self.outbox.get("sending", 0)

    @property
    def dead(self) -> int:
        """Writes in the dead letter: not sent until retried or dropped by hand."""
        return self.outbox.get("dead", 0)

    def summary(self) -> str:
        parts = [
            f"{p.connector}: {p.changed}/{p.records} changed" + (f" ERROR {p.error}" if p.error else "")
            for p in self.polls
        ]
        if self.delivery:
            parts.append(f"delivered {self.delivery.done}, failed {self.delivery.failed}, dead {self.delivery.dead}")
        if self.outbox:
            dead = f", {self.dead} in the dead letter" if self.dead else ""
            parts.append(f"{self.pending} write(s) pending{dead}")
        for name, wait in self.rate_limited.items():
            parts.append(
                f"{name}: waiting for {wait.service}'s rate limit until "
                f"{until_text(wait.until, self.now or wait.until)}; nothing sent to it before then"
            )
        return "; ".join(parts)


class Engine:
    def __init__(
        self,
        store: Store,
        helpdesk: Helpdesk,
        trackers: dict[str, Tracker],
        settings: PlanSettings,
        *,
        max_attempts: int = 8,
        backoff_max: float = 3600.0,
        clock: Callable[[], datetime] = utcnow,
        mappings: Mappings | None = None,
    ):
        self.store = store
        # Follow-up stages are computed only when the mapping files say where
        # to show them ([stages]); without that the engine does as before.
        self.mappings = mappings if mappings is not None and mappings.shows_stages else None
        self.first_sync = False  # set per poll: the connector had no cursor yet
        # Tickets whose comments the open page read, with the markers of syncd's notes among them.
        self._seen_markers: dict[Ref, set[str]] = {}
        self._unsure = False  # a link by hand: the store may be newer than the services' history
        # Set per poll: the store may be behind the services (a first sync, or a restored copy
        # that has not read this feed to its end yet): writes that could repeat are checked first.
        self._catching_up = False
        self.helpdesk = helpdesk
        self.trackers = trackers
        self.settings = settings
        self.clock = clock
        # What tickets are scanned for: the patterns of the trackers [links] names (default all)
        # and the helpdesk's link field with the [links] fields.
        self._files = mappings or Mappings()
        self._pattern_source: dict[str, tuple[str, ...]] = {}
        self.patterns: dict[str, list[re.Pattern[str]]] = {}
        self.ticket_patterns: dict[str, list[re.Pattern[str]]] = {}
        self._refresh_patterns()
        self.ticket_pattern = re.compile(helpdesk.ticket_url_pattern())
        self.connectors: dict[str, Connector] = {helpdesk.name: helpdesk, **trackers}
        for name, tracker in trackers.items():
            if tracker.needs_key_lookup:
                # Trackers that cannot read an issue by its stable id (GitHub)
                # ask for the key syncd last saw it under.
                tracker.key_lookup = self._key_lookup(name)
        # Set by the daemon on SIGTERM: polls stop after the page in hand is
        # committed and delivery after the action in hand is recorded.
        self.stop_requested: Callable[[], bool] = lambda: False
        # Told what a long run does, page by page and write by write (``syncd once`` on a first sync).
        self.progress: Progress | None = None
        # Connectors waiting out a rate limit (see syncd.ratelimits): not polled, not written to.
        self.parking = Parking(store, self.connectors, clock)
        self.deliverer = Deliverer(
            store,
            self.connectors,
            max_attempts=max_attempts,
            backoff_max=backoff_max,
            clock=clock,
            stop_requested=lambda: self.stop_requested(),
            parking=self.parking,
            progress=lambda: self.progress,
        )
        # What the handoff and the privacy work use: the engine's ports, not the engine.
        ports = Ports(store, clock, trackers, helpdesk, settings, self._work)
        self.handoff = Handoff(ports, self.mappings) if self.mappings is not None else None
        # Places (GitHub repositories) that turned public: what syncd wrote there is rewritten.
        self.privacy = Privacy(ports, self.handoff)

    def _work(self) -> PageWork:
        """A new page transaction's work (enter it to open the transaction)."""
        return PageWork(
            self.store,
            self.settings,
            self.helpdesk.name,
            first_sync=self.first_sync,
            on_queued=self._maybe_made_already,
        )

    def _key_lookup(self, tracker: str) -> Callable[[str], str | None]:
        def lookup(issue_id: str) -> str | None:
            snapshot = self.store.get_snapshot(Ref(tracker, issue_id))
            return snapshot.key if snapshot is not None else None

        return lookup

    # -- the cycle --------------------------------------------------------------

    def cycle(self, names: Iterable[str] | None = None, *, deliver: bool = True) -> CycleReport:
        """Poll the named connectors (default: all, trackers first), then deliver.

        Trackers go first so that an issue a ticket names is usually known
        already (no read to resolve it) and new links show its latest state.
        ``deliver=False`` plans only: the writes stay in the outbox (``syncd
        once --dry-run`` runs so against a copy of the store).
        """
        report = CycleReport()
        for name in names or [*self.trackers, self.helpdesk.name]:
            report.polls.append(self.poll(name))
        if self.handoff is not None and not self.stop_requested():
            self.handoff.tick()
        if deliver:
            report.delivery = self.deliver()
        report.rate_limited = self.parking.all()
        report.now = self.clock()
        report.outbox = self.store.outbox_counts()
        return report

    def poll(self, name: str) -> PollReport:
        """Read the connector's feed from its stored cursor, committing page by page.

        A failure part-way leaves the cursor at the last committed page: the
        next poll resumes there and replays nothing that was committed.
        """
        connector = self.connectors[name]
        report = PollReport(name)
        report.rate_limited_until = self.parking.until(name)
        if report.rate_limited_until is not None:
            return report  # nothing is sent to it before its rate limit ends
        self._conversation_switches()  # the daemon polls feed by feed: each poll sees the rules as they are
        # The first sync reads what happened before syncd watched: the handoff makes no promises for it.
        self.first_sync = self.store.get_cursor(name) is None
        self._seen_markers = {}
        self._catching_up = self.first_sync or self.store.catching_up(name)
        if self._catching_up and not self.first_sync:
            log.info(
                "the store is a restored or copied file: checking what this feed replays against "
                "what syncd already wrote",
                connector=name,
            )
        try:
            self._retry_quarantined(connector, report)
            for page in paused_pages(connector.poll(self.store.get_cursor(name))):
                report.pages += 1
                report.records += len(page.records)
                planned = report.actions
                with collector_paused():
                    self._page(connector, page, report)
                if self.progress is not None:
                    self.progress.page(
                        name, len(page.records), report.actions - planned, [r.updated_at for r in page.records]
                    )
                if self.stop_requested() and not page.done:
                    log.info("stopping the poll after a committed page", connector=name)
                    break
            else:
                if self.progress is not None:
                    self.progress.feed_done(name)
                if isinstance(connector, Helpdesk):
                    report.links += self._restore_shown()
                if self._catching_up and not self.first_sync:
                    with self.store.transaction():
                        self.store.caught_up(name, self.connectors)
        except AuthError as exc:
            report.error = str(exc)
            report.auth_failed = True
            log.error("credentials refused; polling paused", connector=name, error=str(exc))
        except RateLimited as exc:
            # Parked until the end; the cursor stays at the last committed page.
            self.parking.park(exc)
            if exc.connector == name:
                report.rate_limited_until = exc.until
            else:  # a page naming an issue on a parked tracker waits for it
                report.error = str(exc)
        except SyncdError as exc:
            report.error = str(exc)
            log.warning("poll failed; will resume from the last committed page", connector=name, error=str(exc))
        return report

    def _page(self, connector: Connector, page: Page, report: PollReport) -> None:
        if isinstance(connector, Helpdesk):
            self._ticket_page(connector, page, report)
        else:
            assert isinstance(connector, Tracker)
            self._issue_page(connector, page, report)

    def _retry_quarantined(self, connector: Connector, report: PollReport) -> None:
        """Read recently quarantined records again by id and process the ones that now read well.

        A wrong-shaped answer is often a passing fault; the feed's cursor has
        moved past the record, so without this it would wait for its next change.
        """
        rows = [
            r
            for r in self.store.list_quarantine()
            if r.connector == connector.name and r.record_id and r.count <= QUARANTINE_RETRIES
        ]
        for row in rows:
            if self.stop_requested():
                return
            record: Ticket | Issue
            try:
                if isinstance(connector, Helpdesk):
                    record = connector.get_ticket(row.record_id)
                else:
                    assert isinstance(connector, Tracker)
                    record = connector.get_issue(row.record_id)
                # The cursor stays where it is: this page is one record, not a feed position.
                page = Page(records=[record], cursor=self.store.get_cursor(connector.name), done=True)
                self._page(connector, page, report)
            except AuthError:
                raise
            except Gone as exc:  # deleted or hidden since: end its links rather than wait for it
                with self.store.transaction():
                    self.store.resolve_quarantine(row.id)
                if not isinstance(connector, Helpdesk):
                    self.issues_gone({Ref(connector.name, row.record_id): str(exc)})
            except (NotFound, PayloadError) as exc:
                with self.store.transaction():
                    self.store.quarantine(connector.name, row.record_id, f"read again: {exc}", row.payload)
            except SyncdError as exc:  # a passing failure: try again next poll
                log.info(
                    "quarantined record not read again yet",
                    connector=connector.name,
                    record_id=row.record_id,
                    error=str(exc),
                )

    def deliver(self) -> DeliveryReport:
        """Send the outbox; then act on what the sends found, and send what that planned.

        A run can find issues gone (their links end, with notes), issues or
        follow-up tickets created (their links' writes), or a place turned
        public (its rewrites): each plans writes that go out in a further run
        of this same delivery, up to a few rounds; anything left waits for the
        next cycle.
        """
        if not self.stop_requested():
            self.privacy.learn()  # a poll read a place's visibility anew: its rewrites go out in this run
        report = DeliveryReport()
        for _ in range(DELIVERY_ROUNDS):
            run = self.deliverer.run()
            _merge(report, run)
            again = False
            if run.gone:
                # Issues deleted or hidden in the tracker: end their links, then send the notes saying so.
                self.issues_gone(run.gone)
                again = True
            if self.stop_requested():
                break
            if self.handoff is not None and self.handoff.finish_created():
                again = True  # an escalation's issue or a follow-up ticket was created: send its link's writes
            if self.handoff is not None and self.handoff.tell_failed_handoffs():
                again = True  # a tracker refused an escalation's create: the agent's note goes now
            if self.privacy.learn():
                again = True  # a write found its place turned public: rewrite what syncd wrote there now
            if not again:
                break
        if not self.stop_requested() and self.privacy.finish():
            _merge(report, self.deliverer.run())  # notes on the tickets: texts that could not be rewritten
        return report

    # -- issues deleted, hidden or moved out of reach ---------------------------------------

    def issues_gone(self, gone: dict[Ref, str]) -> int:
        """Issues the tracker says are deleted or not visible to syncd's account (a
        write, a read or the periodic check met :class:`Gone`): each gets a tombstone
        (when, why), its waiting writes are dropped, and every link to it ends with
        one note per ticket (the tag and status field as for an unlink). The notes'
        keys are fixed per link, so a replay plans nothing twice. Returns the links ended."""
        ended = 0
        with self._work() as work:
            for ref, why in gone.items():
                snapshot = self.store.get_snapshot(ref)
                issue = snapshot if isinstance(snapshot, Issue) else None
                key = issue.key if issue is not None else ref.id
                if self.store.mark_issue_gone(ref, key, why):
                    self.store.add_event(
                        Event(
                            "issue_gone",
                            f"{key} is deleted, or no longer visible to syncd's account ({why})",
                            None,
                            ref,
                            {"reason": why},
                        )
                    )
                    log.info("issue gone from its tracker; ending its links", issue=key, tracker=ref.connector, why=why)
                self.store.drop_group(
                    issue_group(ref), f"not sent: the issue is deleted, or no longer visible to syncd's account ({why})"
                )
                for row in self.store.links_for_issue(ref):
                    ended += 1
                    ticket = self.store.get_snapshot(row.ticket)
                    if not isinstance(ticket, Ticket):
                        self.store.end_link(row.ticket, ref, GONE_REASON)
                        continue
                    remaining = [r.issue for r in self.store.links_for_ticket(row.ticket) if r.issue != ref]
                    plan = plan_issue_gone(
                        Link(row.ticket, ref, row.origin),
                        ticket,
                        issue,
                        list(self.store.get_snapshots(remaining).values()),
                        self.settings,
                        epoch=format_time(row.created_at) or "",
                    )
                    if not ticket.can_update:
                        plan.actions = []  # a closed ticket cannot take a note: the link just ends
                    work.commit(plan)
        return ended

    def issue_out_of_reach(self, issue: Issue) -> int:
        """A linked issue now lives in a project, team or repository syncd does not
        follow: it still exists, so the links stay, but its changes no longer reach
        syncd. Each linked ticket is told once per place (the mark is kept in the
        issue's bookkeeping; moving back clears it). Returns the notes planned."""
        if self.store.get_meta(issue.ref).get("out_of_reach") == issue.team:
            return 0
        with self._work() as work:
            self.store.put_snapshot(issue)
            refs = [row.ticket for row in self.store.links_for_issue(issue.ref)]
            tickets = [t for t in self.store.get_snapshots(refs).values() if isinstance(t, Ticket) and t.can_update]
            n = work.commit(plan_out_of_reach(issue, tickets, self.settings))
            self.store.set_meta(issue.ref, out_of_reach=issue.team)
        log.info("linked issue moved where syncd does not follow; tickets told", issue=issue.key, place=issue.team)
        return n

    def check_presence(self, budget: int) -> dict[str, int]:
        """The periodic existence check: for each tracker that can, read the linked
        issues checked least recently, in the tracker's batches, with at most
        ``budget`` requests. Finds deletions and moves of issues syncd never writes
        to again. Returns the requests spent per tracker."""
        spent: dict[str, int] = {}
        for name, tracker in self.trackers.items():
            if tracker.presence_batch <= 0 or self.stop_requested() or self.parking.until(name) is not None:
                continue  # a tracker waiting for its rate limit is checked at the next run after the wait
            spent[name] = 0
            due = self.store.presence_due(name, budget * tracker.presence_batch)
            for start in range(0, len(due), tracker.presence_batch):
                if spent[name] >= budget or self.stop_requested():
                    break
                chunk = due[start : start + tracker.presence_batch]
                try:
                    answer = tracker.presence([i for i, _ in chunk], {i: e for i, e in chunk if e})
                except RateLimited as exc:
                    self.parking.park(exc)
                    spent[name] += 1
                    break
                except SyncdError as exc:
                    log.warning(
                        "existence check of linked issues failed; tried again next time", connector=name, error=str(exc)
                    )
                    spent[name] += 1
                    break
                spent[name] += answer.requests
                self._presence_answer(tracker, [i for i, _ in chunk], answer)
        return spent

    def _presence_answer(self, tracker: Tracker, asked: list[str], answer: Presence) -> None:
        now = self.clock()
        with self.store.transaction():
            for ident in asked:
                if ident in answer.found or ident in answer.unchanged or ident in answer.gone:
                    # A 304 keeps the ETag it matched; a fresh read brings its own.
                    etag = {"presence_etag": answer.validators[ident]} if ident in answer.validators else {}
                    self.store.set_meta(Ref(tracker.name, ident), presence_at=now, **etag)
        if answer.gone:
            self.issues_gone({Ref(tracker.name, i): f"the periodic check: {why}" for i, why in answer.gone.items()})
        for issue in answer.found.values():
            if not tracker.follows(issue):
                self.issue_out_of_reach(issue)
            elif self.store.get_meta(issue.ref).get("out_of_reach"):
                with self.store.transaction():
                    self.store.set_meta(issue.ref, out_of_reach=None)

    def check_comments(self, budget: int) -> dict[str, int]:
        """The periodic existence check of the tracker comments syncd mirrored, for the
        trackers whose comment feed does not list deleted comments (``comment_presence_batch``)
        and that read comments now (a rule mirrors them): the comments checked least
        recently, in the tracker's batches, with at most ``budget`` requests per tracker.
        A deleted one is noted on the linked tickets, as a deletion the feed shows is.
        Returns the requests spent per tracker."""
        spent: dict[str, int] = {}
        for name, tracker in self.trackers.items():
            batch = tracker.comment_presence_batch
            if batch <= 0 or not tracker.read_comments or self.stop_requested():
                continue
            if self.parking.until(name) is not None:
                continue  # a tracker waiting for its rate limit is checked at the next run after the wait
            spent[name] = 0
            due = self.store.comments_due(name, budget * batch)
            for start in range(0, len(due), batch):
                if spent[name] >= budget or self.stop_requested():
                    break
                chunk = due[start : start + batch]
                try:
                    answer = tracker.comments_present({c: i for c, i, _ in chunk}, {c: e for c, _, e in chunk if e})
                except RateLimited as exc:
                    self.parking.park(exc)
                    spent[name] += 1
                    break
                except SyncdError as exc:
                    log.warning(
                        "existence check of mirrored comments failed; tried again next time",
                        connector=name,
                        error=str(exc),
                    )
                    spent[name] += 1
                    break
                spent[name] += answer.requests
                self._comments_answer(tracker, chunk, answer)
        return spent

    def _comments_answer(
        self, tracker: Tracker, asked: list[tuple[str, str, str | None]], answer: CommentPresence
    ) -> None:
        now = self.clock()
        issues = self.store.get_snapshots([Ref(tracker.name, issue_id) for _, issue_id, _ in asked])
        gone = []
        for comment_id, issue_id, _ in asked:
            issue = issues.get(Ref(tracker.name, issue_id))
            if comment_id not in answer.gone or not isinstance(issue, Issue):
                continue
            mark = Mirrored.from_dict(self.store.get_meta(remark_ref(tracker.name, comment_id)).get("mirrored"))
            if mark is not None and not mark.deleted:
                gone.append(mark.gone(comment_id, issue, now))
        with self._work() as work:
            for comment_id, _, _ in asked:
                if comment_id in answer.present or comment_id in answer.gone:
                    # A 304 keeps the ETag it matched; a fresh read brings its own.
                    etag = {"present_etag": answer.validators[comment_id]} if comment_id in answer.validators else {}
                    self.store.set_meta(remark_ref(tracker.name, comment_id), present_at=now, **etag)
            if gone:
                self._mirror_remarks(work, tracker, gone)
        if gone:
            log.info("mirrored comments deleted; tickets told", connector=tracker.name, comments=len(gone))

    # -- helpdesk pages -----------------------------------------------------------

    def _refresh_patterns(self, *, learn: bool = False) -> None:
        """The trackers' link patterns, compiled again when one changed (a tracker that
        follows every team recognises the keys of the teams it has listed or seen).
        ``learn``: first let each tracker read what its patterns need (once per process);
        one that cannot is said, and its configured patterns still apply."""
        if learn:
            for name, tracker in self.trackers.items():
                try:
                    tracker.learn_keys()
                except SyncdError as exc:
                    log.warning(
                        "could not list the tracker's teams; their bare keys are recognised once it answers",
                        connector=name,
                        error=str(exc),
                    )
        source = {name: tuple(t.link_patterns()) for name, t in self.trackers.items()}
        if source != self._pattern_source:
            self._pattern_source = source
            self.patterns = compile_patterns(source)
            self.ticket_patterns = self._files.linking(self.patterns)

    def _ticket_page(self, helpdesk: Helpdesk, page: Page, report: PollReport) -> None:
        self._refresh_patterns(learn=True)
        link_fields = self._files.scanned_fields(helpdesk.link_fields())
        tickets: list[Ticket] = page.records
        previous = self.store.get_snapshots([t.ref for t in tickets])
        known_links = self.store.links_for_tickets([t.ref for t in tickets], active=False)
        metas = self.store.get_metas([t.ref for t in tickets])
        todo: list[tuple[Ticket, list[Comment], list[Candidate]]] = []
        unseen: set[Ref] = set()
        seen: dict[Ref, set[str]] = {}
        noted: dict[Ref, list[tuple[str, str]]] = {}
        changed: list[tuple[Ticket, Ticket | None]] = []
        asks: list[CommentAsk] = []
        bulk_echoes: set[Ref] = set()
        for ticket in tickets:
            prev = previous.get(ticket.ref)
            if seen_already(prev, ticket):
                continue
            report.changed += 1
            meta = metas[ticket.ref]
            if meta.get("tags_unseen"):
                unseen.add(ticket.ref)
            changed.append((ticket, prev if isinstance(prev, Ticket) else None))
            after = meta.get("last_comment_id")
            # A comment not read yet is no older than the change last stored (comments
            # move a ticket's time); without one read, the ticket's whole history is wanted.
            since = prev.updated_at if after and prev is not None else ticket.created_at
            since = min(since, ticket.updated_at) if since is not None else None
            asks.append(CommentAsk(ticket.ref.id, after, since, ticket.updated_at))
        # Comments are read even when the change looks like the echo of syncd's
        # own write: timestamps are whole seconds, and an agent's note in the same
        # second as that write would otherwise be missed. A helpdesk with a feed
        # of comments answers for the whole page in one or a few requests.
        read = helpdesk.page_comments(asks) if asks else {}
        for ticket, prev in changed:
            comments_or_error = read.get(ticket.ref.id, [])
            if isinstance(comments_or_error, PayloadError):
                page.rejected.append(_rejected(ticket.ref.id, comments_or_error))
                continue
            comments = comments_or_error
            meta = metas[ticket.ref]
            # Syncd's own write coming back (still read: see above): known by the time the
            # write answered, or, for a bulk write (whose answer has no time), by its note
            # being all that is new on the ticket.
            if meta.get("echo_updated_at") == format_time(ticket.updated_at):
                report.echoes += 1
            elif meta.get("echo_marker"):
                bulk_echoes.add(ticket.ref)
                if (
                    comments
                    and all(c.markers for c in comments)
                    and any(meta["echo_marker"] in c.markers for c in comments)
                ):
                    report.echoes += 1
            candidates = ticket_candidates(ticket, prev, comments, self.ticket_patterns, link_fields)
            for field_id, value in unmatched_link_fields(ticket, prev, self.ticket_patterns, link_fields):
                log.warning(
                    "the ticket's link field names no issue of a followed tracker; nothing was linked",
                    ticket=ticket.key,
                    field=field_id,
                    value=value[:200],
                    trackers=", ".join(sorted(self.trackers)),
                )
            todo.append((ticket, comments, candidates))
            seen[ticket.ref] = {m for c in comments for m in c.markers}
            noted[ticket.ref] = self._noted_links(ticket, comments, known_links[ticket.ref])
        issues, gone = self._resolve_issue_refs(
            {(c.tracker, c.ref) for _, _, cs in todo for c in cs} | {pair for pairs in noted.values() for pair in pairs}
        )

        agents = self._agent_names([(t, cs) for t, cs, _ in todo])
        self._seen_markers = seen
        with self._work() as work:
            # The page's snapshots and bookkeeping: one statement each, inside the page's transaction.
            self.store.put_snapshots([ticket for ticket, _, _ in todo])
            self._note_read(todo, unseen, bulk_echoes)
            for ticket, comments, candidates in todo:
                for candidate in candidates:
                    issue = issues.get((candidate.tracker, candidate.ref))
                    if issue is None:
                        gone_key = gone.get((candidate.tracker, candidate.ref), candidate.ref)
                        if ticket.can_update:
                            work.commit(
                                plan_gone_ref(ticket, candidate.tracker, candidate.ref, gone_key, self.settings)
                            )
                        continue
                    report.links += work.link(ticket, issue, candidate.origin, report)
                report.links += self._restore_noted_links(ticket, noted[ticket.ref], issues, seen[ticket.ref])
                report.actions += self._mirror_notes(work, ticket, comments, agents)
            report.actions += self._stages(
                work,
                [t.ref for t, _, _ in todo],
                previous,
                {t.ref: c for t, c, _ in todo},
                records={t.ref: t for t, _, _ in todo},
            )
            self._settle_found(seen, {t.ref: c for t, c, _ in todo})
            report.quarantined += work.quarantine(helpdesk.name, page.rejected)
            work.release(helpdesk.name, [t.ref.id for t, _, _ in todo])
            work.set_cursor(helpdesk.name, page.cursor)
        self._seen_markers = {}

    def _note_read(
        self, todo: list[tuple[Ticket, list[Comment], list[Candidate]]], unseen: set[Ref], bulk_echoes: set[Ref]
    ) -> None:
        """Remember what the page read of each ticket (its last comment; a tag write or a bulk
        write seen): the tickets' bookkeeping read and written once, merged as Store.set_meta does."""
        changes: dict[Ref, dict[str, object]] = {}
        for ticket, comments, _ in todo:
            change: dict[str, object] = {"last_comment_id": comments[-1].id} if comments else {}
            if ticket.ref in unseen:
                change["tags_unseen"] = None  # read after syncd's tag write: the snapshot holds its tags
            if ticket.ref in bulk_echoes:
                change["echo_marker"] = None  # its bulk write has been seen
            if change:
                changes.setdefault(ticket.ref, {}).update(change)
        if not changes:
            return
        metas = self.store.get_metas(changes)
        for ref, change in changes.items():
            merged = metas[ref]
            for name, value in change.items():
                if value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = to_dict(value)
        self.store.put_metas(metas)

    def _resolve_issue_refs(
        self, wanted: set[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], Issue], dict[tuple[str, str], str]]:
        """Issues named by key or URL: from the store when known, else one read each.

        Returns the issues found and, apart, the refs the tracker says are gone
        (deleted, hidden, or no such issue), with the key to show: a stored issue
        with a tombstone is never linked from its snapshot. Any other failure
        aborts the page (the poll resumes from the last committed page), since
        skipping would lose the link for good.
        """
        out: dict[tuple[str, str], Issue] = {}
        gone: dict[tuple[str, str], str] = {}
        for tracker_name, ref in wanted:
            issue = self.store.find_issue_by_key(tracker_name, self.trackers[tracker_name].normalise_ref(ref))
            if issue is not None and self.store.gone_issue(issue.ref) is not None:
                gone[(tracker_name, ref)] = issue.key
                continue
            if issue is None:
                try:
                    issue = self.trackers[tracker_name].get_issue(ref)
                except (NotFound, Gone):  # no such issue (any more): an answer, not a failure
                    gone[(tracker_name, ref)] = ref
                    continue
                self.store.put_snapshot(issue)
                self.store.clear_issue_gone(issue.ref)  # readable again
            out[(tracker_name, ref)] = issue
        return out, gone

    # -- tracker pages --------------------------------------------------------------

    def _issue_page(self, tracker: Tracker, page: Page, report: PollReport) -> None:
        # The feed read its places' visibility before this page: a place now public is acted on
        # first, so that nothing this page plans there names a customer.
        self.privacy.learn(tracker.name)
        issues: list[Issue] = page.records
        previous = self.store.get_snapshots([i.ref for i in issues])
        changed: list[tuple[Issue, Issue | None]] = []
        for issue in issues:
            prev = previous.get(issue.ref)
            if seen_already(prev, issue):
                continue
            changed.append((issue, prev))
        report.changed += len(changed)
        report.echoes += sum(1 for issue, prev in changed if prev is not None and only_echo(prev, issue))
        # Tickets a person attached to an issue (read before the transaction).
        attached: dict[Ref, list[Ticket]] = {}
        for issue, prev in changed:
            ids = issue_ticket_ids(issue, prev, self.ticket_pattern)
            if ids:
                attached[issue.ref] = self._resolve_tickets(ids)
        links = self.store.links_for_issues([i.ref for i, _ in changed])
        shown = self._shown_by_syncd([issue for issue, _ in changed])

        self._seen_markers = {}  # no ticket's comments were read for this page
        with self._work() as work:
            self.store.put_snapshots([issue for issue, _ in changed])
            self._seen_again([i for i, _ in changed])
            affected: dict[Ref, None] = {}
            # The linked tickets of every changed issue, with their issues, read at once; when the
            # page links a ticket (an attachment, a restored link) each issue reads its own after.
            linked_now = (
                None
                if any(attached.get(i.ref) or shown[i.ref][0] for i, _ in changed)
                else self._linked_tickets_of([row.ticket for i, p in changed if p is not None for row in links[i.ref]])
            )
            # The issues' updates are committed together (one statement per kind of row), in order:
            # before a link of the page commits its own plan, the updates planned so far go first.
            updates: list[Plan] = []
            for issue, prev in changed:
                if updates and (attached.get(issue.ref) or shown[issue.ref][0]):
                    report.actions += work.commit_many(updates)
                    updates = []
                for ticket in attached.get(issue.ref, ()):
                    report.links += work.link(ticket, issue, "attachment", report)
                    affected[ticket.ref] = None
                for ticket in shown[issue.ref][0]:
                    if self._restore_link(ticket, issue, f"syncd's {tracker.name} attachment on the issue names it"):
                        report.links += 1
                        affected[ticket.ref] = None
                rows = links.get(issue.ref, [])
                affected.update((row.ticket, None) for row in rows)
                if prev is None or not rows:
                    continue
                # A closed ticket cannot be written to (the handoff opens a follow-up ticket instead).
                found = (
                    self._linked_tickets([row.ticket for row in rows])
                    if linked_now is None
                    else [linked_now[row.ticket] for row in rows if row.ticket in linked_now]
                )
                linked = [lt for lt in found if lt.ticket.can_update]
                updates.append(plan_issue_update(issue, prev, linked, self.settings))
            report.actions += work.commit_many(updates)
            self._defer_shown({ref: ids for ref, (_, ids) in shown.items() if ids})
            report.actions += self._mirror_remarks(work, tracker, page.remarks + self._deleted_remarks(tracker, page))
            # The linked tickets read above are as stored (the page writes no ticket).
            held = {ref: lt.ticket for ref, lt in (linked_now or {}).items()}
            report.actions += self._stages(work, list(affected), records=held)
            report.quarantined += work.quarantine(tracker.name, page.rejected)
            work.release(tracker.name, [i.ref.id for i, _ in changed])
            work.set_cursor(tracker.name, page.cursor)

    def _seen_again(self, issues: list[Issue]) -> None:
        """Issues a poll returned exist and are visible: any tombstone goes (links that
        ended stay ended; naming the issue again links it). Inside the page's transaction."""
        for ident in self.store.gone_ids(issues[0].ref.connector, [i.ref.id for i in issues]) if issues else ():
            self.store.clear_issue_gone(Ref(issues[0].ref.connector, ident))

    def _resolve_tickets(self, ids: list[str]) -> list[Ticket]:
        refs = [Ref(self.helpdesk.name, i) for i in ids]
        known = self.store.get_snapshots(refs)
        out = []
        for ref in refs:
            ticket = known.get(ref)
            if ticket is None:
                try:
                    ticket = self.helpdesk.get_ticket(ref.id)
                except NotFound:
                    continue
                self.store.put_snapshot(ticket)
            out.append(ticket)
        return out

    def _linked_tickets(self, ticket_refs: list[Ref]) -> list[LinkedTicket]:
        """Each ticket with the current snapshots of every issue it is linked to."""
        found = self._linked_tickets_of(ticket_refs)
        return [found[ref] for ref in ticket_refs if ref in found]

    def _linked_tickets_of(self, ticket_refs: list[Ref]) -> dict[Ref, LinkedTicket]:
        """:meth:`_linked_tickets` by ticket (tickets never seen are absent): three queries in all."""
        ticket_refs = list(dict.fromkeys(ticket_refs))
        tickets = self.store.get_snapshots(ticket_refs)
        links = self.store.links_for_tickets(ticket_refs)
        issues = self.store.get_snapshots({row.issue: None for rows in links.values() for row in rows})
        out = {}
        for ref in ticket_refs:
            ticket = tickets.get(ref)
            if ticket is None:
                continue
            issue_refs = [row.issue for row in links[ref]]
            out[ref] = LinkedTicket(ticket, tuple(issues[r] for r in issue_refs if r in issues))
        return out

    # -- the conversation: comments crossing between tickets and issues ---------------------------

    def _conversation_switches(self) -> None:
        """Note when each route's conversation rule was switched on (nothing made before it is
        mirrored) or off, and ask the trackers a rule mirrors from to read their comments."""
        with self.store.transaction():
            for route in self._files.routes:
                ref = Ref(RULES, route.name)
                on = route.conversation.direction != "none"
                since = self.store.get_meta(ref).get("since")
                if on and since is None:
                    # Whole seconds: some services stamp comments so, and one made this second counts.
                    self.store.set_meta(ref, since=self.clock().replace(microsecond=0))
                    log.info("conversation rule switched on; earlier comments are not copied", route=route.name)
                elif not on and since is not None:
                    self.store.set_meta(ref, since=None)
        for name, tracker in self.trackers.items():
            tracker.read_comments = tracker.comment_feed and self._files.mirrors_to_tickets(name)

    def _rule_since(self, route: Route) -> datetime:
        since = self.store.get_meta(Ref(RULES, route.name)).get("since")
        return _parse(since) if isinstance(since, str) else self.clock()

    def _mirror_remarks(self, work: PageWork, tracker: Tracker, remarks: list[IssueRemark]) -> int:
        """Comments a tracker's feed read, as notes on the linked tickets whose route mirrors them.

        In the page's work."""
        queued = 0
        for remark in remarks:
            found = (
                self.store.get_snapshot(Ref(tracker.name, remark.issue_id))
                if remark.issue_id
                else self.store.find_issue_by_key(tracker.name, tracker.normalise_ref(remark.issue_key))
            )
            if not isinstance(found, Issue):
                continue  # an issue syncd does not know links nothing
            rows = self.store.links_for_issue(found.ref)
            tickets = self.store.get_snapshots([row.ticket for row in rows])
            targets = []
            for row in rows:
                ticket = tickets.get(row.ticket)
                route = self._files.route_for(ticket) if isinstance(ticket, Ticket) else None
                if isinstance(ticket, Ticket) and route is not None and route.tracker == tracker.name:
                    targets.append(MirrorTarget(ticket, route.conversation, self._rule_since(route)))
            if not targets:
                continue
            ref = remark_ref(tracker.name, remark.id)
            previous = Mirrored.from_dict(self.store.get_meta(ref).get("mirrored"))
            planned = plan_remark(remark, found, previous, targets, tracker.own_accounts(), self.settings.note_format)
            queued += work.commit(planned.plan)
            if planned.mark is not None:
                self.store.set_meta(ref, mirrored=planned.mark.to_dict())
                ids = self.store.get_meta(found.ref).get("mirrored_comments") or []
                if remark.id not in ids and not planned.mark.deleted:
                    self.store.set_meta(found.ref, mirrored_comments=[*ids, remark.id])
        return queued

    def _deleted_remarks(self, tracker: Tracker, page: Page) -> list[IssueRemark]:
        """Comments syncd mirrored that the page's complete comment lists no longer hold: deleted."""
        out = []
        for issue_id, ids in page.comment_sets.items():
            issue = self.store.get_snapshot(Ref(tracker.name, issue_id))
            if not isinstance(issue, Issue):
                continue
            for comment_id in self.store.get_meta(issue.ref).get("mirrored_comments") or []:
                mark = Mirrored.from_dict(self.store.get_meta(remark_ref(tracker.name, comment_id)).get("mirrored"))
                if comment_id not in ids and mark is not None and not mark.deleted:
                    out.append(mark.gone(comment_id, issue, self.clock()))
        return out

    def _agent_names(self, pages: list[tuple[Ticket, list[Comment]]]) -> dict[str, str]:
        """The names of the agents whose notes a rule selects (read before the page's transaction)."""
        names: dict[str, str] = {}
        for ticket, comments in pages:
            route = self._files.route_for(ticket)
            if route is None or not route.conversation.to_issue:
                continue
            for comment in comments:
                author = comment.author_id
                anyone = replace(route.conversation, agents=())  # the rule's agents may be named: read the name first
                if author is None or author in names or selected_words(comment, ticket, anyone) is None:
                    continue
                name = comment.author_name or (ticket.assignee_name if author == ticket.assignee_id else None)
                if name is None:
                    try:
                        name = self.helpdesk.agent_name(author)
                    except (NotFound, Gone, PayloadError):
                        name = None
                names[author] = name or "An agent"
        return names

    def _mirror_notes(self, work: PageWork, ticket: Ticket, comments: list[Comment], agents: dict[str, str]) -> int:
        """An agent's internal notes the ticket's route selects, as comments on its linked issues.

        In the page's work."""
        route = self._files.route_for(ticket)
        if route is None or not route.conversation.to_issue or not comments:
            return 0
        refs = [row.issue for row in self.store.links_for_ticket(ticket.ref) if row.issue.connector == route.tracker]
        snapshots = self.store.get_snapshots(refs)
        tracker = self.trackers.get(route.tracker)
        fmt = tracker.text_format if tracker is not None else "markdown"
        sides = [IssueSide(i, fmt) for r in refs if isinstance(i := snapshots.get(r), Issue)]
        if not sides:
            return 0
        since = self._rule_since(route)
        queued = 0
        for comment in comments:
            agent = agents.get(comment.author_id or "", "An agent")
            if comment.author_name is None and comment.author_id in agents:
                comment = replace(comment, author_name=agent)
            plan = plan_agent_note(
                comment,
                ticket,
                route.conversation,
                since,
                sides,
                agent,
                self.settings.helpdesk_name,
                self.settings.note_format,
            )
            queued += work.commit(plan)
        return queued

    # -- the handoff --------------------------------------------------------------------------

    def _stages(
        self,
        work: PageWork,
        tickets: list[Ref],
        previous: dict[Ref, Ticket | Issue] | None = None,
        comments: dict[Ref, list[Comment]] | None = None,
        records: dict[Ref, Ticket] | None = None,
    ) -> int:
        """The handoff of tickets whose inputs changed (see :mod:`syncd.handoff`), in the page's work.

        ``records``: tickets as the page stored them, which the handoff then does not read back."""
        if self.handoff is None or not tickets:
            work.take_writes()
            return 0
        return self.handoff.update(work, tickets, previous, comments, records)

    # -- links ---------------------------------------------------------------------------

    def link(
        self, ticket_id: str, issue_ref: str, tracker: str | None = None, origin: str = "cli"
    ) -> tuple[Ticket, Issue, bool]:
        """Link a ticket to an issue by hand (``syncd link``). Returns (ticket, issue, created)."""
        tracker_name, tracker_conn = self._tracker_for(issue_ref, tracker)
        try:
            ticket = self.helpdesk.get_ticket(ticket_id)
        except (NotFound, Gone):
            raise SyncdError(
                f"ticket {ticket_id} was not found in {self.helpdesk.label}: check the number "
                "(or syncd's account cannot see it)"
            ) from None
        try:
            issue = tracker_conn.get_issue(issue_ref)
        except (NotFound, Gone):
            raise SyncdError(
                f"{issue_ref} was not found in {tracker_conn.label}: check the key "
                "(or it was deleted, or syncd's account cannot see it)"
            ) from None
        with self._work() as work:
            self.store.put_snapshot(ticket)
            self.store.put_snapshot(issue)
            self.store.clear_issue_gone(issue.ref)  # the tracker just returned it
            # A store rebuilt since this link was first made would write its note again:
            # delivery looks for the note's marker first (one read of the ticket's comments).
            self._unsure = True
            try:
                created = work.link(ticket, issue, origin) > 0
            finally:
                self._unsure = False
        return ticket, issue, created

    def escalate(self, ticket_id: str) -> EscalatedAgain:
        """``syncd escalate``: hand the ticket over again, against the current mappings
        (see :meth:`Handoff.escalate_again`). Reads the ticket from the helpdesk first."""
        if self.handoff is None:
            raise SyncdError(
                "the handoff is not set up: the mapping files have no [stages] table, so syncd escalates nothing"
            )
        return self.handoff.escalate_again(self.helpdesk.get_ticket(ticket_id))

    def unlink(
        self, ticket_id: str, issue_ref: str, tracker: str | None = None, reason: str = "unlinked by hand"
    ) -> bool:
        tracker_name, tracker_conn = self._tracker_for(issue_ref, tracker)
        ticket_ref = Ref(self.helpdesk.name, ticket_id)
        issue = self.store.find_issue_by_key(tracker_name, issue_ref) or self.store.get_snapshot(
            Ref(tracker_name, issue_ref)
        )
        if issue is None:
            try:
                issue = tracker_conn.get_issue(issue_ref)
            except (NotFound, Gone):
                raise SyncdError(
                    f"{issue_ref} was not found in {tracker_conn.label}, and syncd has never seen it: check the key"
                ) from None
        ticket = self.store.get_snapshot(ticket_ref) or self.helpdesk.get_ticket(ticket_id)
        with self._work() as work:
            rows = self.store.links_for_ticket(ticket_ref)
            match = [r for r in rows if r.issue == issue.ref]
            if not match:
                return False
            remaining_refs = [r.issue for r in rows if r.issue != issue.ref]
            remaining = list(self.store.get_snapshots(remaining_refs).values())
            link = Link(ticket_ref, issue.ref, match[0].origin)
            plan = plan_unlink(
                link, ticket, issue, remaining, self.settings, reason, epoch=format_time(match[0].created_at) or ""
            )
            work.commit(plan)
        return True

    def _tracker_for(self, issue_ref: str, tracker: str | None) -> tuple[str, Tracker]:
        if tracker:
            if tracker not in self.trackers:
                raise SyncdError(f"no tracker named {tracker!r} (configured: {', '.join(self.trackers)})")
            return tracker, self.trackers[tracker]
        for name, regexes in self.patterns.items():
            if any(r.fullmatch(issue_ref) or r.search(issue_ref) for r in regexes):
                return name, self.trackers[name]
        if len(self.trackers) == 1:
            name = next(iter(self.trackers))
            return name, self.trackers[name]
        raise SyncdError(f"cannot tell which tracker {issue_ref!r} belongs to; name it with --tracker")

    # -- a lost or restored store ------------------------------------------------------------
    # What syncd wrote is still in the services, each write with its marker.
    # A store that lost its history (deleted, rebuilt, restored from an older
    # copy) plans those writes again with the same keys: a write whose marker
    # the engine has just read is recorded as done, never sent; one it cannot
    # see for free is checked for its marker before its first send; and the
    # links that only syncd's own notes and attachments still show (links
    # made by hand) are taken up again, without a new note.

    def _noted_links(
        self, ticket: Ticket, comments: list[Comment], rows: list[LinkRow] | None = None
    ) -> list[tuple[str, str]]:
        """Issues named in syncd's own notes on a ticket that no link of the store explains
        (``rows``: the ticket's links, ended ones too, when the caller read them already).

        Only read when the ticket carries syncd's linked tag: a ticket syncd
        never linked, or whose links all ended, has nothing to take up."""
        if self.settings.linked_tag not in ticket.tags:
            return []
        refs = noted_refs(comments, self.patterns)
        if refs and rows is None:
            rows = self.store.links_for_ticket(ticket.ref, active=False)
        if refs and rows:
            known = {r.issue for r in rows}
            snapshots = self.store.get_snapshots(known)
            keys = {(r.connector, snapshots[r].key) for r in known if r in snapshots}
            refs = [(name, ref) for name, ref in refs if (name, self.trackers[name].normalise_ref(ref)) not in keys]
        return refs

    def _restore_noted_links(
        self, ticket: Ticket, refs: list[tuple[str, str]], issues: dict[tuple[str, str], Issue], markers: set[str]
    ) -> int:
        """Take up the links whose own note (its marker: the link's key) is on the ticket. Inside a transaction."""
        restored = 0
        for pair in refs:
            issue = issues.get(pair)
            if issue is not None and link_key(ticket.ref, issue.ref) in markers:
                restored += self._restore_link(ticket, issue, "the note syncd left on the ticket names it")
        return restored

    def _shown_by_syncd(self, issues: list[Issue]) -> dict[Ref, tuple[list[Ticket], list[str]]]:
        """Per issue, tickets syncd's own attachments on it show, with no link in the store:
        (those the store knows, ids of the others); two queries for all the issues.

        The attachment's marker must be the key syncd gives exactly that
        ticket on exactly this issue. A ticket the store does not know waits
        for the helpdesk's feed (after a lost store trackers are polled
        first, and most tickets come in the helpdesk's first pages): no read
        per ticket here."""
        shown = {
            issue.ref: [
                tid
                for tid, marker in syncd_attached_ticket_ids(issue, self.ticket_pattern)
                if marker == attach_key(Ref(self.helpdesk.name, tid), issue.ref)
            ]
            for issue in issues
        }
        marked = [ref for ref, ids in shown.items() if ids]
        links = self.store.links_for_issues(marked, active=False) if marked else {}
        unlinked: dict[Ref, list[Ref]] = {}
        for ref, rows in links.items():
            known = {r.ticket.id for r in rows}
            unlinked[ref] = [Ref(self.helpdesk.name, tid) for tid in shown[ref] if tid not in known]
        wanted = {r: None for refs in unlinked.values() for r in refs}
        tickets = self.store.get_snapshots(wanted) if wanted else {}
        out: dict[Ref, tuple[list[Ticket], list[str]]] = {}
        for issue in issues:
            refs = unlinked.get(issue.ref, [])
            out[issue.ref] = (
                [t for r in refs if isinstance(t := tickets.get(r), Ticket)],
                [r.id for r in refs if r not in tickets],
            )
        return out

    def _defer_shown(self, later: dict[Ref, list[str]]) -> None:
        """Remember tickets shown by syncd on issues, to take up after the helpdesk's feed. Inside a transaction."""
        if later:
            pairs = self.store.shown_unlinked()
            self.store.set_shown_unlinked(pairs + [(issue, tid) for issue, ids in later.items() for tid in ids])

    def _restore_shown(self) -> int:
        """After the helpdesk's feed: the deferred tickets its pages did not link, read once each now."""
        pairs = self.store.shown_unlinked()
        left: list[tuple[Ref, str]] = []
        restored = 0
        for issue_ref, tid in pairs:
            ticket_ref = Ref(self.helpdesk.name, tid)
            if any(r.issue == issue_ref for r in self.store.links_for_ticket(ticket_ref, active=False)):
                continue
            issue = self.store.get_snapshot(issue_ref)
            if not isinstance(issue, Issue):
                continue
            if self.stop_requested():
                left.append((issue_ref, tid))
                continue
            try:
                tickets = self._resolve_tickets([tid])
            except AuthError:
                raise
            except SyncdError as exc:  # passing: try again after the next helpdesk poll
                log.info("ticket shown on an issue not read yet", ticket=tid, error=str(exc))
                left.append((issue_ref, tid))
                continue
            with self.store.transaction():
                for ticket in tickets:
                    restored += self._restore_link(ticket, issue, "syncd's attachment on the issue names it")
        with self.store.transaction():
            self.store.set_shown_unlinked(left)
        return restored

    def _restore_link(self, ticket: Ticket, issue: Issue, why: str) -> int:
        """A link syncd made before and the store forgot: record it, write nothing (its writes are there).

        Not when the ticket has lost syncd's linked tag (every link of it
        ended since; a closed ticket takes no tag, so it is not asked) or the
        store knows of the link, ended or not."""
        if self.settings.linked_tag not in ticket.tags and ticket.can_update:
            return 0
        if any(r.issue == issue.ref for r in self.store.links_for_ticket(ticket.ref, active=False)):
            return 0
        self.store.add_link(Link(ticket.ref, issue.ref, "restored"))
        self.store.add_event(
            Event(
                "restored",
                f"{ticket.key} linked to {issue.key} again: {why}",
                ticket.ref,
                issue.ref,
                {"origin": "restored", "issue_key": issue.key},
            )
        )
        log.info("link taken up again from what syncd wrote", ticket=ticket.key, issue=issue.key)
        return 1

    def _settle_found(self, seen: dict[Ref, set[str]], comments: dict[Ref, list[Comment]]) -> None:
        """Queued notes whose marker the page read on their ticket are done; the others are known unsent.

        The page read every comment since the store's last one: a note an
        earlier run wrote is among them, and one absent is not there. While
        the store may be behind, a note whose very text syncd already wrote
        there (its key made from times the store forgot, such as a stage's
        start folded into the handoff's note) is done too."""
        groups = self.store.open_actions_of_groups(ticket_group(ref) for ref in seen)
        for ref, markers in seen.items():
            written = (
                {_plain(_unmarked(c.body)) for c in comments.get(ref, ()) if c.markers} if self._catching_up else set()
            )
            for row in groups[ticket_group(ref)]:
                write = stored(row)
                if not isinstance(write, TicketUpdate) or row.connector != ref.connector or row.target != ref.id:
                    continue
                note = write.note
                if note and (write.marker_for(row.key) in markers or _plain(note) in written):
                    self.store.mark_done(row.id, {"found_marker": True})
                    self.store.add_event(
                        Event(
                            "delivered",
                            "found already written (by an earlier run)",
                            ref,
                            None,
                            {"action": row.id, "op": row.op, "key": row.key},
                        )
                    )
                elif row.state == "sending" and row.attempts == 0:
                    self.store.known_unsent(row.id)

    def _maybe_made_already(self, action: Action) -> None:
        """A write just queued that an earlier run may have made: settle it now, or check it before sending.

        Shown tickets on an issue carry their key where the tracker keeps one
        (a Linear attachment): found in the issue's snapshot, done. Notes,
        comments and creates planned while the store may be behind the
        services (a first sync; a restored or copied store file until each
        feed was read to its end) or by hand are checked for their marker
        before the first send, unless this page read the ticket's comments
        (settled with the page).
        Attachments and in-place comments need neither: the trackers keep one per ticket."""
        ref = Ref(action.connector, action.target)
        if isinstance(action.write, AttachTicket):
            issue = self.store.get_snapshot(ref)
            if isinstance(issue, Issue) and any(a.marker == action.key for a in issue.attachments):
                row = next((r for r in self.store.open_actions(action.group) if r.key == action.key), None)
                if row is not None and self.store.mark_done(row.id, {"found_marker": True}):
                    self.store.add_event(
                        Event(
                            "delivered",
                            "found already written (by an earlier run)",
                            None,
                            ref,
                            {"action": row.id, "op": row.op, "key": row.key},
                        )
                    )
            return
        if not (self._catching_up or self._unsure) or ref in self._seen_markers:
            return
        if action.write.repeats():
            self.store.check_before_send(action.key)


def _merge(report: DeliveryReport, more: DeliveryReport) -> None:
    report.done += more.done
    report.already += more.already
    report.failed += more.failed
    report.dead += more.dead
    report.dropped += more.dropped
    report.waiting += more.waiting
    report.requests_saved += more.requests_saved
    report.errors += more.errors
    for ref, why in more.gone.items():
        report.gone.setdefault(ref, why)
    report.privacy_rewritten += more.privacy_rewritten
    report.privacy_kept += more.privacy_kept


def _unmarked(text: str) -> str:
    """A note's text without syncd's marker tokens (as ``[syncd:KEY]`` or bare)."""
    return re.sub(r"\[?syncd:[0-9a-f]{20}\]?", "", text)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _plain(text: str) -> str:
    return " ".join(text.split())


def _rejected(record_id: str, exc: PayloadError) -> Rejected:
    return Rejected(record_id, str(exc), exc.payload)
