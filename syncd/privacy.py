"""When a tracker's place turns public: rewrite what syncd wrote there, in the same cycle.

A tracker that can tell (``Tracker.reports_visibility``: GitHub) reports each
place's visibility as last read, at no cost (:meth:`Tracker.visibility`).
The connector reads it on polls (every ``visibility_ttl``) and before every
write. After the polls and after each delivery run the engine compares it
with what the store says syncd last acted on (:meth:`Privacy.learn`); for a
place that turned public it plans, in ONE transaction with recording the new
visibility:

- one ``issue.make_opaque`` rewrite per issue syncd wrote to there (found in
  the outbox's delivered writes), carrying the demand comment's opaque text
  and, for an issue syncd created from an escalation, both drafts;
- the issues' snapshots marked public, so every later write there is
  composed in the opaque form (the demand comment, the linked-tickets
  comment, owner-gap notes);
- queued writes that would name a customer there are dropped (the rewrite
  carries the current opaque text instead).

Delivery sends the rewrite (the connector reads the texts, compares, edits in
place) in the same cycle. Texts someone edited since syncd wrote them are
kept; :meth:`Privacy.finish` then puts one internal note on each linked
ticket, and the daemon counts them in ``syncd_privacy_rewrite_skipped_total``.
Level-triggered: a crash anywhere before the transaction commits leaves the
store saying "private", and the next comparison plans the same rewrites.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Iterator

import structlog

from mappings.planner import Plan
from mappings.privacy_plan import (
    ISSUE_WRITES,
    PRIVACY_KEPT,
    plan_kept_notes,
    plan_make_opaque,
    written_comments,
)
from syncd.page import PageWork, Ports
from syncd.records import Event, Issue, Ref, Ticket, format_time
from syncd.store import OutboxRow, Store
from syncd.writes import CreateIssue, MakeOpaque, UpsertComment, stored

if TYPE_CHECKING:
    from syncd.handoff import Handoff

log = structlog.get_logger("syncd.privacy")

# Issues or writes read from the store at a time when a place turns public.
PAGE = 500


def written_for(store: Store, connector: str, issue_id: str) -> dict[str, str]:
    """Comment id → ``updated_at`` of syncd's last write of it, read when the rewrite is sent."""
    return written_comments(store.done_writes(connector, ISSUE_WRITES, target=issue_id))


class Privacy:
    """Places turned public: through the engine's ports, with the handoff for the demand comment's text."""

    def __init__(self, ports: Ports, handoff: Handoff | None):
        self.ports = ports
        self.store = ports.store
        self.handoff = handoff

    def learn(self, only: str | None = None) -> int:
        """Act on every place a tracker (``only`` that one) now reports public that syncd had not acted on.

        Called before each page of a tracker's feed is committed (the poll read
        the visibility before its first page) and before and after each
        delivery run (a write reads it too). Returns the actions queued."""
        queued = 0
        for name, tracker in self.ports.trackers.items():
            if not tracker.reports_visibility or (only is not None and name != only):
                continue
            known = {place.lower(): public for place, public in tracker.visibility().items()}
            if not known:
                continue
            stored = self.store.place_visibility(name)
            for place, public in sorted(known.items()):
                before = stored.get(place)
                if before == public:
                    continue
                with self.ports.work() as work:
                    if public:
                        queued += self._turned_public(work, name, place, first=before is None)
                    self.store.set_place_visibility(name, place, public)
        return queued

    def _turned_public(self, work: PageWork, tracker: str, place: str, *, first: bool) -> int:
        """Plan the rewrites of one place. Inside the transaction that records it public."""
        epoch = format_time(self.ports.clock()) or ""
        # The writes a page at a time, and of each page's issues only which are in the place: a place
        # may hold most of the store's issues.
        wrote: dict[str, bool] = {}  # issue id -> a write that may have named a customer
        for rows in self._done_writes(tracker, ISSUE_WRITES):
            in_place = self.store.which_in_place(tracker, place, (row.target for row in rows))
            for row in rows:
                write = stored(row)
                if row.target in in_place and write is not None and not isinstance(write, MakeOpaque):
                    wrote[row.target] = wrote.get(row.target, False) or write.private_form(row.result)
        created: dict[str, dict] = {}
        for rows in self._done_writes(tracker, (CreateIssue.op,)):
            for row in rows:
                new_id = str((row.result or {}).get("id") or "")
                write = stored(row)
                if row.target.lower() == place and new_id and isinstance(write, CreateIssue):
                    created[new_id] = write.drafts(row.key)
                    wrote[new_id] = wrote.get(new_id, False) or write.private_form(row.result)
        # With no visibility on record (syncd upgraded, or the place first read now) only writes
        # that may have named a customer are worth reading the issue again.
        targets = [i for i, private in wrote.items() if private or not first]
        if first and not targets:
            return 0  # first read, nothing written there that named a customer
        plan = Plan()
        for start in range(0, len(targets), PAGE):
            issues = self.store.get_snapshots([Ref(tracker, i) for i in targets[start : start + PAGE]])
            for issue_id in targets[start : start + PAGE]:
                issue = issues.get(Ref(tracker, issue_id))
                if not isinstance(issue, Issue):
                    continue
                self._drop_private_writes(issue.ref)
                slots = {}
                demand = self._opaque_demand(issue)
                if demand is not None:
                    slots["demand"] = demand
                plan.actions.append(plan_make_opaque(issue, place, epoch, slots=slots, created=created.get(issue_id)))
        after = ""  # every later write there is composed for a public place
        while ids := self.store.issue_ids_in_place(tracker, place, after=after, limit=PAGE):
            for issue in self.store.get_snapshots([Ref(tracker, i) for i in ids]).values():
                if isinstance(issue, Issue) and not issue.public:
                    self.store.put_snapshot(dataclasses.replace(issue, public=True))
            after = ids[-1]
        plan.events.append(
            Event(
                "privacy",
                f"{place} in {tracker} is now public: rewriting what syncd wrote "
                f"on {len(plan.actions)} issue(s) without customer details",
                None,
                None,
                {"tracker": tracker, "place": place, "issues": len(plan.actions)},
            )
        )
        log.warning(
            "place turned public; rewriting syncd's texts there", tracker=tracker, place=place, issues=len(plan.actions)
        )
        return work.commit(plan)

    def _done_writes(self, tracker: str, ops: tuple[str, ...]) -> Iterator[list[OutboxRow]]:
        """The tracker's delivered writes of ``ops``, oldest first, a page at a time."""
        after = 0
        while True:
            rows = self.store.done_writes(tracker, ops, after=after, limit=PAGE)
            if rows:
                yield rows
            if len(rows) < PAGE:
                return
            after = rows[-1].id

    def _drop_private_writes(self, issue: Ref) -> None:
        """Queued writes to the issue that name a customer: dropped (the rewrite carries the opaque text)."""
        for row in self.store.unfinished_for(issue.connector, issue.id):
            write = stored(row)
            if isinstance(write, UpsertComment) and write.customer_data:
                self.store.drop_action(row.id)
                self.store.add_event(
                    Event(
                        "dropped",
                        "a queued write naming a customer was dropped: the place is now public",
                        None,
                        issue,
                        {"action": row.id, "op": row.op},
                    )
                )

    def _opaque_demand(self, issue: Issue) -> str | None:
        """The demand comment's opaque text, when syncd wrote one on the issue."""
        handoff = self.handoff
        meta = self.store.get_meta(issue.ref)
        if handoff is None or not meta.get("demand_body"):
            return None
        body = handoff.demand_text(dataclasses.replace(issue, public=True))
        if body is None:
            return None
        # What the demand comment now says: the next update writes only when it changes.
        self.store.set_meta(issue.ref, demand_body=body, demand_version=int(meta.get("demand_version") or 0) + 1)
        return body

    def finish(self) -> int:
        """One internal note per linked ticket for rewrites that left edited texts alone; returns notes queued."""
        queued = 0
        for row in self.store.done_writes_unnoted(MakeOpaque.op):
            kept = (row.result or {}).get("kept") or []
            with self.ports.work() as work:
                self.store.set_action_result(row.id, {**(row.result or {}), "noted": True})
                if not kept:
                    continue
                issue_ref = Ref(row.connector, row.target)
                tickets = [r.ticket for r in self.store.links_for_issue(issue_ref)]
                snapshots = self.store.get_snapshots(tickets)
                tickets = [t for t in tickets if isinstance(snapshots.get(t), Ticket) and snapshots[t].can_update]
                issue = self.store.get_snapshot(issue_ref)
                rewrite = stored(row)
                written_key = rewrite.issue_key if isinstance(rewrite, MakeOpaque) else ""
                key = issue.key if isinstance(issue, Issue) else (written_key or row.target)
                template = self.ports.settings.templates.get("privacy_kept", PRIVACY_KEPT)
                actions = plan_kept_notes(
                    key, tickets, kept, row.key, note_format=self.ports.settings.note_format, template=template
                )
                events = [
                    Event(
                        "privacy_kept",
                        f"{key}: {k.get('what')} could not be made private (edited since syncd wrote it)",
                        None,
                        issue_ref,
                        dict(k),
                    )
                    for k in kept
                ]
                queued += work.commit(Plan(actions=actions, events=events))
        return queued
