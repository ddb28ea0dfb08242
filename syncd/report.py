"""The review report's inputs, gathered from the store (``syncd report``).

I/O glue only: this module reads stage histories, snapshots, links, record
meta and promises, and hands plain records to :mod:`mappings.review`, where
the figures are computed. Owner gaps are computed *now*, from the stored
snapshots, with the same pure functions the engine uses.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from typing import Mapping

from mappings.calendar import ALWAYS, BusinessCalendar, Duration
from mappings.promises import PromiseRule
from mappings.review import FollowUpRecord, Review, build_review
from mappings.routes import Mappings
from mappings.stage_plan import issue_view
from mappings.stages import IssueView, StageSpan, owner_gaps
from syncd.records import Issue, Ref, Stage, Ticket, parse_time, utc
from syncd.store import Store

_AGO = re.compile(r"^\s*\d+\s+(minute|hour|day)s?\s*$", re.I)


def promise_rules(mappings: Mappings) -> dict[str, PromiseRule]:
    """Each route's promise rule by route name (routes without one are absent)."""
    return {route.name: route.promises for route in mappings.routes if route.promises is not None}


def check_route(mappings: Mappings, name: str | None) -> None:
    """ValueError naming the known routes when ``name`` is not one of them."""
    if name is None or mappings.route(name) is not None:
        return
    known = ", ".join(r.name for r in mappings.routes)
    if not known:
        raise ValueError(f"--route: unknown route {name!r}; the mapping files define no routes")
    raise ValueError(f"--route: unknown route {name!r}; known routes: {known}")


def parse_since(text: str, now: datetime, calendar: BusinessCalendar = ALWAYS) -> datetime:
    """``--since``: a date (``YYYY-MM-DD``, from midnight in ``calendar``'s time zone), a date
    and time (``YYYY-MM-DDTHH:MM``, same zone unless it carries an offset), or a span back from
    ``now`` ("7 days", "12 hours")."""
    text = text.strip()
    if _AGO.match(text):
        span = Duration.parse(text)
        if span.unit == "days":  # the same local time N days ago, as "N days" means going forward
            local = calendar.local(now)
            return (local - timedelta(days=span.amount)).astimezone(timezone.utc)
        return utc(now) - span.elapsed
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time(0), calendar.tz).astimezone(timezone.utc)
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None:
        raise ValueError(
            f"--since: not a date or a span (got {text!r}); write YYYY-MM-DD, "
            'YYYY-MM-DDTHH:MM or a span such as "7 days"'
        )
    return (at if at.tzinfo else at.replace(tzinfo=calendar.tz)).astimezone(timezone.utc)


def _mark(meta: Mapping[str, object]) -> tuple[Stage, datetime] | None:
    stored = meta.get("stage_mark")
    if not isinstance(stored, (list, tuple)) or len(stored) != 2:
        return None
    stage, since = Stage(stored[0]), parse_time(str(stored[1]))
    return (stage, since) if since is not None else None


def gather(
    store: Store, mappings: Mappings, tracker_kinds: Mapping[str, str], *, now: datetime
) -> list[FollowUpRecord]:
    """One FollowUpRecord per ticket with a stage history.

    ``tracker_kinds`` maps tracker connector names to their kinds (linear,
    jira, github): the state map reading an issue needs the kind. Issues of
    a connector not configured any more are left out, as the engine does.
    """
    histories = store.all_stage_histories()
    links: dict[Ref, list[Ref]] = defaultdict(list)
    for row in store.all_links(active=True):
        if row.ticket in histories:
            links[row.ticket].append(row.issue)
    snapshots = store.get_snapshots([*histories, *(i for refs in links.values() for i in refs)])
    out = []
    for ref, history in histories.items():
        ticket = snapshots.get(ref)
        ticket = ticket if isinstance(ticket, Ticket) else None
        route = mappings.route_for(ticket) if ticket else None
        rule = route.promises if route else None
        spans = tuple(StageSpan(stage, since) for stage, since in history)
        views: list[IssueView] = []
        for issue_ref in links.get(ref, ()):
            issue, kind = snapshots.get(issue_ref), tracker_kinds.get(issue_ref.connector)
            if isinstance(issue, Issue) and kind:
                views.append(issue_view(issue, kind, route, _mark(store.get_meta(issue_ref)))[0])
        meta = store.get_meta(ref)
        # The engine marks a ticket that stopped being a follow-up (unflagged, unlinked) and keeps its history.
        # A closed ticket followed up by a new ticket is done too: the new one carries the follow-up.
        current = not meta.get("stage_cleared") and not meta.get("followup_ticket")
        stage = spans[-1].stage if spans and current else None
        # A ticket without an agent is dated from its creation, as the engine dates the gap it notes.
        gaps = owner_gaps(
            stage,
            ref,
            ticket.assignee_id if ticket else None,
            views,
            now=now,
            ticket_unassigned_since=ticket.created_at if ticket else None,
            triage_sla=rule.triage_sla if rule else None,
            calendar=rule.calendar if rule else ALWAYS,
        )
        missing = meta.get("missing") or ()
        out.append(
            FollowUpRecord(
                ref,
                ticket.key if ticket else str(ref),
                route.name if route else None,
                spans,
                tuple(gaps),
                tuple(str(m) for m in missing),
                current=current,
                issue_keys=tuple(
                    (i, snapshots[i].key) for i in links.get(ref, ()) if isinstance(snapshots.get(i), Issue)
                ),
            )
        )
    return out


def review(
    store: Store,
    mappings: Mappings,
    tracker_kinds: Mapping[str, str],
    *,
    now: datetime,
    since: datetime | None = None,
    route: str | None = None,
) -> Review:
    """The review at ``now`` from what the store holds (see :func:`mappings.review.build_review`)."""
    check_route(mappings, route)
    return build_review(
        gather(store, mappings, tracker_kinds, now=now),
        store.list_promises(),
        now=now,
        since=since,
        route=route,
        rules=promise_rules(mappings),
    )


__all__ = ["check_route", "gather", "parse_since", "promise_rules", "review"]
