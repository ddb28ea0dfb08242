"""The review report: what the weekly review and the release check look at.

Pure: computed from plain inputs (each follow-up's stage history and owner
gaps, and the promises), rendered as a terminal table, JSON or CSV.

Two kinds of figure:

* the state *now* — stale work (decision age over the route's
  ``stale_after``), owner gaps, blocked follow-ups (Needs context: waiting on
  the agent for what is missing), promises due;
* what *happened* since ``since`` — promises broken, handoffs rejected for
  incompleteness (each move into Needs context), time in handoff limbo
  (flagged → assigned, for handoffs that reached Assigned in the period) as
  median and p90, rework (a customer reopen after Follow-up).

p90 is the nearest-rank percentile: the smallest value with at least 90% of
the values at or below it; the median averages the two middle values.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping, Sequence

from mappings.calendar import ALWAYS, BusinessCalendar, Duration
from mappings.promises import PromiseRule, changed_at
from mappings.stages import ACTIVE, OwnerGap, StageSpan
from syncd.records import Promise, PromiseState, Ref, Stage, format_time, utc

DEFAULT_STALE = Duration(7, "days")
_HANDED_OFF = (Stage.ASSIGNED, Stage.WAITING, Stage.RESOLVED, Stage.FOLLOW_UP)
_BEFORE_HANDOFF = (Stage.NEW, Stage.NEEDS_CONTEXT)


@dataclass(frozen=True)
class FollowUpRecord:
    """One follow-up as the report needs it."""

    ticket: Ref
    key: str  # what people call the ticket ("#123")
    route: str | None
    history: tuple[StageSpan, ...]
    owner_gaps: tuple[OwnerGap, ...] = ()
    missing: tuple[str, ...] = ()  # what its "needs context" note lists, if any
    current: bool = True  # False: no longer a follow-up (unflagged, unlinked); only its history counts
    issue_keys: tuple[tuple[Ref, str], ...] = ()  # what people call the linked issues ("ENG-12")

    @property
    def stage(self) -> Stage | None:
        return self.history[-1].stage if self.history else None


@dataclass(frozen=True)
class Finding:
    kind: str  # stale, owner_gap, blocked, promise_due, promise_broken, limbo, rejected, rework
    ticket: str
    route: str | None
    stage: Stage | None
    since: datetime
    age: timedelta | None  # decision age, gap length, overdue time or limbo duration
    detail: str = ""


@dataclass
class Review:
    now: datetime
    since: datetime | None
    route: str | None
    active: dict[str, int] = field(default_factory=dict)  # stage -> follow-ups in it now
    stale: list[Finding] = field(default_factory=list)
    owner_gaps: list[Finding] = field(default_factory=list)
    blocked: list[Finding] = field(default_factory=list)
    promises_due: list[Finding] = field(default_factory=list)
    promises_broken: list[Finding] = field(default_factory=list)
    limbo: list[Finding] = field(default_factory=list)
    rejected: list[Finding] = field(default_factory=list)
    rework: list[Finding] = field(default_factory=list)

    @property
    def limbo_median(self) -> timedelta | None:
        return median([f.age for f in self.limbo if f.age is not None])

    @property
    def limbo_p90(self) -> timedelta | None:
        return percentile([f.age for f in self.limbo if f.age is not None], 90)

    def findings(self) -> list[Finding]:
        return (
            self.stale
            + self.owner_gaps
            + self.blocked
            + self.promises_due
            + self.promises_broken
            + self.limbo
            + self.rejected
            + self.rework
        )


def stamp(at: datetime | None, calendar: BusinessCalendar = ALWAYS) -> str:
    """A time as people read it in the report and on the command line, in one format:
    ``2026-03-24 17:00 Europe/Berlin`` (the calendar's zone; UTC without one)."""
    if at is None:
        return "—"
    return f"{calendar.local(utc(at)):%Y-%m-%d %H:%M} {calendar.time_zone}"


# -- statistics --------------------------------------------------------------------------------------


def median(values: Sequence[timedelta]) -> timedelta | None:
    if not values:
        return None
    return timedelta(seconds=statistics.median(v.total_seconds() for v in values))


def percentile(values: Sequence[timedelta], pct: float) -> timedelta | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


# -- the computation ---------------------------------------------------------------------------------


def build_review(
    followups: Iterable[FollowUpRecord],
    promises: Iterable[Promise],
    *,
    now: datetime,
    since: datetime | None = None,
    route: str | None = None,
    rules: Mapping[str, PromiseRule] | None = None,
) -> Review:
    """The review at ``now``. ``rules`` maps route names to their promise rules (for stale_after)."""
    now = utc(now)
    since = utc(since) if since else None
    rules = rules or {}
    report = Review(now, since, route)
    followups = [f for f in followups if route is None or f.route == route]
    by_ticket = {f.ticket: f for f in followups}

    def in_period(at: datetime) -> bool:
        return since is None or utc(at) >= since

    for fu in followups:
        stage = fu.stage
        if stage is None:
            continue
        if not fu.current:
            _history_findings(fu, report, in_period)
            continue
        report.active[stage.value] = report.active.get(stage.value, 0) + 1
        current = fu.history[-1]
        rule = rules.get(fu.route or "")
        threshold = rule.stale_after if rule and rule.stale_after else DEFAULT_STALE
        calendar = rule.calendar if rule else ALWAYS
        if stage in ACTIVE and calendar.add(current.since, threshold) <= now:
            report.stale.append(
                Finding(
                    "stale",
                    fu.key,
                    fu.route,
                    stage,
                    current.since,
                    now - current.since,
                    f"unchanged for more than {threshold}",
                )
            )
        for gap in fu.owner_gaps:
            what = (
                "no agent on the ticket"
                if gap.kind == "ticket"
                else f"no assignee on {dict(fu.issue_keys).get(gap.ref, str(gap.ref))}"
            )
            report.owner_gaps.append(Finding("owner_gap", fu.key, fu.route, stage, gap.since, now - gap.since, what))
        if stage is Stage.NEEDS_CONTEXT:
            report.blocked.append(
                Finding(
                    "blocked",
                    fu.key,
                    fu.route,
                    stage,
                    current.since,
                    now - current.since,
                    "missing: " + "; ".join(fu.missing) if fu.missing else "needs context",
                )
            )
        _history_findings(fu, report, in_period)

    for promise in promises:
        linked = by_ticket.get(promise.ticket)
        if linked is None and route is not None:
            continue
        key = linked.key if linked else str(promise.ticket)
        stage = linked.stage if linked else None
        route_name = linked.route if linked else None
        if promise.state is PromiseState.DUE:
            due = changed_at(promise, PromiseState.DUE) or promise.created_at
            rule = rules.get(route_name or "")
            zone = rule.calendar if rule else ALWAYS
            detail = promise.what + (f"; tell the customer by {stamp(promise.due_at, zone)}" if promise.due_at else "")
            report.promises_due.append(Finding("promise_due", key, route_name, stage, due, now - due, detail))
        elif promise.state is PromiseState.BROKEN:
            broken = changed_at(promise, PromiseState.BROKEN) or now
            if in_period(broken):
                report.promises_broken.append(
                    Finding("promise_broken", key, route_name, stage, broken, now - broken, promise.what)
                )

    for findings in (report.stale, report.owner_gaps, report.blocked, report.promises_due):
        findings.sort(key=lambda f: (-(f.age or timedelta(0)), f.ticket))
    for findings in (report.promises_broken, report.limbo, report.rejected, report.rework):
        findings.sort(key=lambda f: (f.since, f.ticket))
    return report


def _history_findings(fu: FollowUpRecord, report: Review, in_period) -> None:
    started: datetime | None = None
    previous: Stage | None = None
    for span in fu.history:
        stage = span.stage
        if stage in _BEFORE_HANDOFF and (previous is None or previous is Stage.FOLLOW_UP):
            started = span.since
        if stage in _HANDED_OFF and started is not None:
            if in_period(span.since):
                report.limbo.append(
                    Finding(
                        "limbo",
                        fu.key,
                        fu.route,
                        stage,
                        started,
                        span.since - started,
                        f"flagged {stamp(started)}, handed over {stamp(span.since)}",
                    )
                )
            started = None
        if stage is Stage.NEEDS_CONTEXT and previous is not Stage.NEEDS_CONTEXT and in_period(span.since):
            report.rejected.append(Finding("rejected", fu.key, fu.route, stage, span.since, None, "handoff incomplete"))
        if stage is Stage.NEW and previous is Stage.FOLLOW_UP and in_period(span.since):
            report.rework.append(
                Finding("rework", fu.key, fu.route, stage, span.since, None, "customer reopened after the follow-up")
            )
        previous = stage


# -- rendering ---------------------------------------------------------------------------------------


def _hours(delta: timedelta | None) -> float | None:
    return None if delta is None else round(delta.total_seconds() / 3600, 2)


def _age(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m"


def summary(report: Review) -> dict[str, object]:
    return {
        "active": dict(sorted(report.active.items())),
        "stale": len(report.stale),
        "owner_gaps": len(report.owner_gaps),
        "blocked": len(report.blocked),
        "promises_due": len(report.promises_due),
        "promises_broken": len(report.promises_broken),
        "handoffs": len(report.limbo),
        "limbo_median_hours": _hours(report.limbo_median),
        "limbo_p90_hours": _hours(report.limbo_p90),
        "rejected": len(report.rejected),
        "rework": len(report.rework),
    }


def _finding_dict(f: Finding) -> dict[str, object]:
    return {
        "kind": f.kind,
        "ticket": f.ticket,
        "route": f.route,
        "stage": f.stage.value if f.stage else None,
        "since": format_time(f.since),
        "age_hours": _hours(f.age),
        "detail": f.detail,
    }


def to_json(report: Review) -> str:
    return json.dumps(
        {
            "now": format_time(report.now),
            "since": format_time(report.since),
            "route": report.route,
            "summary": summary(report),
            "findings": [_finding_dict(f) for f in report.findings()],
        },
        indent=2,
        ensure_ascii=False,
    )


CSV_COLUMNS = ("kind", "ticket", "route", "stage", "since", "age_hours", "detail")


def to_csv(report: Review) -> str:
    """One row per finding, for a spreadsheet."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for finding in report.findings():
        writer.writerow({k: ("" if v is None else v) for k, v in _finding_dict(finding).items()})
    return out.getvalue()


_SECTIONS = (
    ("Stale work (decision age)", "stale"),
    ("Owner gaps", "owner_gaps"),
    ("Blocked (needs context)", "blocked"),
    ("Promises due", "promises_due"),
    ("Promises broken", "promises_broken"),
    ("Handoffs rejected for incompleteness", "rejected"),
    ("Rework (reopened after follow-up)", "rework"),
    ("Handoffs (flagged → assigned)", "limbo"),
)


def to_table(report: Review) -> str:
    """A terminal table: the figures first, then each list."""
    scope = f"since {stamp(report.since)}" if report.since else "all time"
    lines = [f"syncd review at {stamp(report.now)} ({scope}" + (f", route {report.route})" if report.route else ")")]
    active = ", ".join(f"{Stage(k).label} {v}" for k, v in sorted(report.active.items())) or "none"
    figures = [
        ("follow-ups by stage", active),
        ("stale", str(len(report.stale))),
        ("owner gaps", str(len(report.owner_gaps))),
        ("blocked", str(len(report.blocked))),
        ("promises due / broken", f"{len(report.promises_due)} / {len(report.promises_broken)}"),
        (
            "handoff limbo median / p90",
            f"{_age(report.limbo_median)} / {_age(report.limbo_p90)} over {len(report.limbo)} handoff(s)",
        ),
        ("rejected for incompleteness", str(len(report.rejected))),
        ("rework", str(len(report.rework))),
    ]
    width = max(len(name) for name, _ in figures)
    lines += [f"  {name.ljust(width)}  {value}" for name, value in figures]
    for title, attr in _SECTIONS:
        findings: list[Finding] = getattr(report, attr)
        if not findings:
            continue
        lines += ["", f"{title}:"]
        rows = [
            (
                f.ticket,
                f.route or "—",
                f.stage.label if f.stage else "—",
                stamp(f.since),
                _age(f.age),
                f.detail,
            )
            for f in findings
        ]
        lines += _columns(("ticket", "route", "stage", "since", "age", "detail"), rows)
    return "\n".join(lines) + "\n"


def _columns(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]

    def fmt(row: Sequence[str]) -> str:
        return "  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip()

    return [fmt(headers)] + [fmt(row) for row in rows]


RENDERERS = {"table": to_table, "json": to_json, "csv": to_csv}


def render(report: Review, fmt: str = "table") -> str:
    try:
        return RENDERERS[fmt](report)
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r}; use table, json or csv") from None
