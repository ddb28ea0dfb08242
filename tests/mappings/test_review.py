"""The review report's figures on known data, and its three renderings."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from mappings.calendar import Duration
from mappings.promises import PromiseRule, new_promise, on_clock, on_issue_resolved
from mappings.review import FollowUpRecord, build_review, median, percentile, render, to_csv, to_json, to_table
from mappings.stages import OwnerGap, StageSpan
from syncd.records import Ref, Stage

UTC = timezone.utc
T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=20)
S = Stage


def h(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def fu(n: int, route: str, *spans: tuple[Stage, float], gaps=(), missing=()) -> FollowUpRecord:
    return FollowUpRecord(
        Ref("zendesk", str(n)),
        f"#{n}",
        route,
        tuple(StageSpan(stage, h(at)) for stage, at in spans),
        tuple(gaps),
        tuple(missing),
    )


@pytest.mark.parametrize(
    "hours, med, p90",
    [
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5.5, 9),
        ([4], 4, 4),
        ([1, 2, 3, 4, 5, 6], 3.5, 6),
        ([10, 1, 7], 7, 10),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100], 6, 10),
    ],
)
def test_median_and_nearest_rank_p90(hours, med, p90):
    values = [timedelta(hours=x) for x in hours]
    assert median(values) == timedelta(hours=med)
    assert percentile(values, 90) == timedelta(hours=p90)


def test_empty_statistics_are_none():
    assert median([]) is None and percentile([], 90) is None


def followups():
    return [
        # limbo 2h, rejected once, now Waiting since h(3)
        fu(1, "product", (S.NEW, 0), (S.NEEDS_CONTEXT, 1), (S.ASSIGNED, 2), (S.WAITING, 3)),
        # limbo 10h; followed up then reworked at h(100)
        fu(2, "product", (S.NEW, 0), (S.ASSIGNED, 10), (S.RESOLVED, 50), (S.FOLLOW_UP, 60), (S.NEW, 100)),
        # still blocked since h(400): rejected, an owner gap
        fu(
            3,
            "mobile",
            (S.NEW, 399),
            (S.NEEDS_CONTEXT, 400),
            missing=("severity", "steps to reproduce"),
            gaps=[OwnerGap("ticket", Ref("zendesk", "3"), h(399))],
        ),
        # limbo 4h, reached assigned late; done and followed up
        fu(4, "mobile", (S.NEW, 300), (S.WAITING, 304), (S.RESOLVED, 350), (S.FOLLOW_UP, 351)),
    ]


def promises():
    due = on_issue_resolved(
        new_promise(Ref("zendesk", "2"), "news when it ships", h(10), origin="rule", trigger="issue_resolved"),
        h(50),
        respond_by=NOW + timedelta(days=1),
    )
    broken = on_clock(new_promise(Ref("zendesk", "1"), "an update", h(2), origin="rule", due_at=h(200)), NOW)
    old_broken = on_clock(new_promise(Ref("zendesk", "3"), "an update", h(0), origin="rule", due_at=h(20)), NOW)
    return [due, broken, old_broken]


def test_review_figures_on_known_data():
    report = build_review(followups(), promises(), now=NOW)
    assert report.active == {"waiting": 1, "new": 1, "needs_context": 1, "follow_up": 1}
    assert sorted(f.age for f in report.limbo) == [timedelta(hours=2), timedelta(hours=4), timedelta(hours=10)]
    assert report.limbo_median == timedelta(hours=4) and report.limbo_p90 == timedelta(hours=10)
    assert [f.ticket for f in report.rejected] == ["#1", "#3"]
    assert [f.ticket for f in report.rework] == ["#2"]
    assert [f.ticket for f in report.blocked] == ["#3"]
    assert report.blocked[0].detail == "missing: severity; steps to reproduce"
    assert [f.ticket for f in report.owner_gaps] == ["#3"]
    assert [f.ticket for f in report.promises_due] == ["#2"]
    assert sorted(f.ticket for f in report.promises_broken) == ["#1", "#3"]
    # Stale: 7 days by default: #1 (Waiting since h3) and #2 (New since h100); #3 since h400 (~3.5 days) is not.
    assert [f.ticket for f in report.stale] == ["#1", "#2"]


def test_since_and_route_filters():
    report = build_review(followups(), promises(), now=NOW, since=h(150))
    assert [f.ticket for f in report.limbo] == ["#4"]  # handed over in the period
    assert [f.ticket for f in report.rejected] == ["#3"]
    assert report.rework == []
    assert [f.ticket for f in report.promises_broken] == ["#1"]  # broken at h200; #3's at h20
    mobile = build_review(followups(), promises(), now=NOW, route="mobile")
    assert {f.route for f in mobile.findings()} == {"mobile"}
    assert [f.ticket for f in mobile.promises_broken] == ["#3"]


def test_stale_threshold_comes_from_the_route_rule():
    rules = {"mobile": PromiseRule("m", stale_after=Duration(2, "days"))}
    report = build_review(followups(), [], now=NOW, rules=rules)
    assert "#3" in [f.ticket for f in report.stale]


def test_json_csv_and_table_show_the_same_findings():
    report = build_review(followups(), promises(), now=NOW)
    data = json.loads(to_json(report))
    assert data["summary"]["limbo_median_hours"] == 4.0 and data["summary"]["limbo_p90_hours"] == 10.0
    assert data["summary"]["rework"] == 1 and data["summary"]["rejected"] == 2
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert len(rows) == len(data["findings"]) == len(report.findings())
    assert {r["kind"] for r in rows} == {
        "stale",
        "owner_gap",
        "blocked",
        "promise_due",
        "promise_broken",
        "limbo",
        "rejected",
        "rework",
    }
    limbo = sorted(float(r["age_hours"]) for r in rows if r["kind"] == "limbo")
    assert limbo == [2.0, 4.0, 10.0]
    table = to_table(report)
    assert re.search(r"handoff limbo median / p90 +4h 00m / 10h 00m over 3 handoff\(s\)", table)
    assert "Follow-up 1, Needs context 1, New 1, Waiting 1" in table
    assert "missing: severity; steps to reproduce" in table
    assert render(report, "csv") == to_csv(report)
    with pytest.raises(ValueError, match="table, json or csv"):
        render(report, "xml")
