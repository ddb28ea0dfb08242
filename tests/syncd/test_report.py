"""The review's inputs gathered from a store filled directly (syncd.report), and the figures they give."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mappings.calendar import ALWAYS, BusinessCalendar, Duration
from mappings.promises import ISSUE_RESOLVED, PromiseRule, new_promise, on_clock, on_issue_resolved
from mappings.routes import Mappings, Route
from syncd.records import Issue, Link, Ref, Stage, StateCategory, Ticket, format_time
from syncd.report import gather, parse_since, review
from syncd.store import Store

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)  # a Friday


def at(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=timezone.utc)


FAST = PromiseRule("fast", triage_sla=Duration(4, "hours"), stale_after=Duration(2, "days"))
MAPPINGS = Mappings(
    routes=(
        Route("mobile", "linear", "APP", tags=("mobile",), promises=FAST),
        Route("product", "linear", "ENG"),  # catch-all, no promise rule: default stale age, no triage SLA
    )
)
KINDS = {"linear": "linear"}


def zd(n: int) -> Ref:
    return Ref("zendesk", str(n))


def ticket(n: int, *, tags=(), assignee: str | None = None, created: datetime = at(1)) -> Ticket:
    return Ticket(
        zd(n),
        f"#{n}",
        f"https://z/{n}",
        f"ticket {n}",
        "open",
        at(1),
        created_at=created,
        tags=tuple(tags),
        assignee_id=assignee,
    )


def issue(ident: str, state: StateCategory, *, assignee: str | None = None, updated: datetime = at(19)) -> Issue:
    return Issue(
        Ref("linear", ident),
        f"ENG-{ident}",
        f"https://l/{ident}",
        ident,
        state,
        state.value,
        updated,
        assignee=assignee,
    )


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.db", clock=lambda: NOW) as s:
        fill(s)
        yield s


def fill(s: Store) -> None:
    # 1 (mobile): handed over in 4 hours, now waiting on an issue nobody owns since the 16th.
    s.put_snapshot(ticket(1, tags=["mobile"], assignee="a1"))
    s.put_stage(zd(1), [(Stage.NEW, at(10, 9)), (Stage.ASSIGNED, at(10, 13)), (Stage.WAITING, at(16, 12))])
    s.put_snapshot(issue("i1", StateCategory.STARTED))
    s.add_link(Link(zd(1), Ref("linear", "i1"), "comment"))
    s.set_meta(Ref("linear", "i1"), stage_mark=["waiting", format_time(at(16, 12))])
    # 2 (mobile): rejected for incompleteness, no agent since the 18th.
    s.put_snapshot(ticket(2, tags=["mobile"], created=at(18, 10)))
    s.put_stage(zd(2), [(Stage.NEW, at(18, 10)), (Stage.NEEDS_CONTEXT, at(18, 11))])
    s.set_meta(zd(2), missing=["organisation", "steps to reproduce"])
    # 3 (product): two handoffs (48 h, then 21 h after a reopen that was rework).
    s.put_snapshot(ticket(3, assignee="a3"))
    s.put_stage(
        zd(3),
        [
            (Stage.NEW, at(1)),
            (Stage.ASSIGNED, at(3)),
            (Stage.RESOLVED, at(5)),
            (Stage.FOLLOW_UP, at(6)),
            (Stage.NEW, at(12, 12)),
            (Stage.ASSIGNED, at(13)),
        ],
    )
    s.put_snapshot(issue("i2", StateCategory.UNSTARTED, updated=at(19)))
    s.add_link(Link(zd(3), Ref("linear", "i2"), "comment"))
    # ... also linked to an issue of a tracker no longer configured, and once to an issue since unlinked.
    s.put_snapshot(Issue(Ref("jira", "9"), "OLD-9", "u", "t", StateCategory.STARTED, "x", at(1)))
    s.add_link(Link(zd(3), Ref("jira", "9"), "comment"))
    s.put_snapshot(issue("gone", StateCategory.STARTED))
    s.add_link(Link(zd(3), Ref("linear", "gone"), "comment"))
    s.end_link(zd(3), Ref("linear", "gone"), "unlinked")
    # 5 (mobile): its issue has had no assignee for 2 hours only: within the 4 hour triage SLA.
    s.put_snapshot(ticket(5, tags=["mobile"], assignee="a5"))
    s.put_stage(zd(5), [(Stage.WAITING, NOW - timedelta(hours=1))])
    s.put_snapshot(issue("i3", StateCategory.STARTED, updated=NOW - timedelta(hours=2)))
    s.add_link(Link(zd(5), Ref("linear", "i3"), "comment"))
    # 4: a stage history whose ticket snapshot is gone (it still counts, under its ref, with no route).
    s.put_stage(zd(4), [(Stage.FOLLOW_UP, at(2))])
    # 6 (product): flagged and rejected on the 17th, then unflagged: no longer a follow-up, so it
    # is neither stale nor blocked now, but the rejection happened.
    s.put_snapshot(ticket(6))
    s.put_stage(zd(6), [(Stage.NEW, at(17, 9)), (Stage.NEEDS_CONTEXT, at(17, 10))])
    s.set_meta(zd(6), stage_cleared=format_time(at(17, 15)), missing=["severity"])
    # Promises: due on 1, broken on 3 on the 15th, open on 2.
    due = on_issue_resolved(
        new_promise(zd(1), "news when it ships", at(10), origin="rule", trigger=ISSUE_RESOLVED), at(19)
    )
    broken = on_clock(new_promise(zd(3), "an update", at(13), origin="cli", due_at=at(15)), at(16))
    s.put_promise(due)
    s.put_promise(broken)
    s.put_promise(new_promise(zd(2), "an update", at(18), origin="cli", due_at=at(25)))


def by_ticket(store):
    return {f.key: f for f in gather(store, MAPPINGS, KINDS, now=NOW)}


def test_every_ticket_with_a_stage_history_is_gathered_with_its_route(store):
    records = by_ticket(store)
    assert set(records) == {"#1", "#2", "#3", "#5", "#6", "zendesk:4"}
    assert {k: r.route for k, r in records.items()} == {
        "#1": "mobile",
        "#2": "mobile",
        "#3": "product",
        "#5": "mobile",
        "#6": "product",
        "zendesk:4": None,
    }
    assert [k for k, r in records.items() if not r.current] == ["#6"]
    assert records["#3"].stage is Stage.ASSIGNED and len(records["#3"].history) == 6
    assert records["#2"].missing == ("organisation", "steps to reproduce")


def test_owner_gaps_are_computed_now_from_snapshots_and_issue_marks(store):
    records = by_ticket(store)
    (gap1,) = records["#1"].owner_gaps
    # The issue's remembered stage mark, not its last update (the 19th), dates the gap.
    assert (gap1.kind, gap1.ref, gap1.since) == ("issue", Ref("linear", "i1"), at(16, 12))
    (gap2,) = records["#2"].owner_gaps
    assert (gap2.kind, gap2.since) == ("ticket", at(18, 10))
    # No triage SLA on the product route: an unassigned issue is a gap at once; jira:9 (no tracker
    # configured) and the unlinked issue are not looked at.
    assert [(g.kind, g.ref, g.since) for g in records["#3"].owner_gaps] == [("issue", Ref("linear", "i2"), at(19))]
    assert records["#5"].owner_gaps == ()  # 2 hours unassigned, SLA 4 hours
    assert records["zendesk:4"].owner_gaps == ()  # Follow-up is not active
    assert records["#6"].owner_gaps == ()  # no agent, but no longer a follow-up
    later = {f.key: f for f in gather(store, MAPPINGS, KINDS, now=NOW + timedelta(hours=3))}
    assert [g.ref for g in later["#5"].owner_gaps] == [Ref("linear", "i3")]


def test_the_review_figures_per_route(store):
    mobile = review(store, MAPPINGS, KINDS, now=NOW, route="mobile")
    assert sorted(f.ticket for f in mobile.stale) == ["#1", "#2"]  # stale_after 2 days
    assert sorted((f.ticket, f.detail) for f in mobile.owner_gaps) == [
        ("#1", "no assignee on ENG-i1"),
        ("#2", "no agent on the ticket"),
    ]
    assert [(f.ticket, f.detail) for f in mobile.blocked] == [("#2", "missing: organisation; steps to reproduce")]
    assert [f.ticket for f in mobile.promises_due] == ["#1"]
    assert mobile.promises_broken == []
    assert [f.age for f in mobile.limbo] == [timedelta(hours=4)]
    assert [f.ticket for f in mobile.rejected] == ["#2"] and mobile.rework == []

    product = review(store, MAPPINGS, KINDS, now=NOW, route="product")
    assert [f.ticket for f in product.stale] == ["#3"]  # 7 days by default: assigned since the 13th, 09:00
    assert [f.ticket for f in product.owner_gaps] == ["#3"]
    assert [f.ticket for f in product.promises_broken] == ["#3"] and product.promises_due == []
    assert sorted(f.age for f in product.limbo) == [timedelta(hours=21), timedelta(hours=48)]
    assert product.limbo_median == timedelta(hours=34, minutes=30) and product.limbo_p90 == timedelta(hours=48)
    assert [f.ticket for f in product.rework] == ["#3"]
    # #6 is no longer a follow-up: its rejection on the 17th counts, it is neither blocked nor stale now.
    assert [f.ticket for f in product.rejected] == ["#6"] and product.blocked == []
    assert "needs_context" not in product.active


def test_the_whole_review_and_since(store):
    everything = review(store, MAPPINGS, KINDS, now=NOW)
    assert everything.active == {"waiting": 2, "needs_context": 1, "assigned": 1, "follow_up": 1}
    assert everything.limbo_median == timedelta(hours=21) and everything.limbo_p90 == timedelta(hours=48)
    assert len(everything.promises_due) == 1 and len(everything.promises_broken) == 1

    since_11th = review(store, MAPPINGS, KINDS, now=NOW, since=at(11, 0))
    assert [f.age for f in since_11th.limbo] == [timedelta(hours=21)]  # #1's handoff on the 10th is before
    assert len(since_11th.rework) == 1 and len(since_11th.promises_broken) == 1 and len(since_11th.rejected) == 2
    since_16th = review(store, MAPPINGS, KINDS, now=NOW, since=at(16, 0))
    assert since_16th.limbo == [] and since_16th.rework == [] and since_16th.promises_broken == []
    assert len(since_16th.rejected) == 2
    since_18th = review(store, MAPPINGS, KINDS, now=NOW, since=at(18, 0))
    assert [f.ticket for f in since_18th.rejected] == ["#2"]
    # The state now does not depend on the period.
    assert len(since_16th.stale) == len(everything.stale) == 3 and len(since_16th.owner_gaps) == 3


def test_an_unknown_route_names_the_known_ones(store):
    with pytest.raises(ValueError, match=r"^--route: unknown route 'web'; known routes: mobile, product$"):
        review(store, MAPPINGS, KINDS, now=NOW, route="web")
    with pytest.raises(ValueError, match="the mapping files define no routes"):
        review(store, Mappings(), KINDS, now=NOW, route="web")


def test_without_routes_every_follow_up_counts_with_the_default_state_map(store):
    records = {f.key: f for f in gather(store, Mappings(), KINDS, now=NOW)}
    assert {r.route for r in records.values()} == {None}
    # No rule, no triage SLA: #5's issue is a gap at once.
    assert [g.ref for g in records["#5"].owner_gaps] == [Ref("linear", "i3")]


def test_an_empty_store_gives_an_empty_review(tmp_path):
    with Store(tmp_path / "e.db") as s:
        result = review(s, MAPPINGS, KINDS, now=NOW)
    assert result.active == {} and result.findings() == []


BERLIN = BusinessCalendar("Europe/Berlin")


@pytest.mark.parametrize(
    "text, calendar, expected",
    [
        ("7 days", ALWAYS, NOW - timedelta(days=7)),
        ("12 hours", ALWAYS, NOW - timedelta(hours=12)),
        ("2026-03-01", ALWAYS, at(1, 0)),
        ("2026-03-01", BERLIN, datetime(2026, 2, 28, 23, 0, tzinfo=timezone.utc)),  # midnight in Berlin (CET)
        ("2026-03-01T10:30", BERLIN, at(1, 9, 30)),
        ("2026-03-01T10:30+00:00", BERLIN, at(1, 10, 30)),
        # "N days" keeps the local time across a DST change (Berlin moves to CEST on 29 March).
        ("3 days", BERLIN, datetime(2026, 3, 30, 10, 0, tzinfo=timezone.utc) - timedelta(days=3) + timedelta(hours=1)),
    ],
)
def test_parse_since(text, calendar, expected):
    now = NOW if "days" not in text or calendar is ALWAYS else datetime(2026, 3, 30, 10, 0, tzinfo=timezone.utc)
    assert parse_since(text, now, calendar) == expected


@pytest.mark.parametrize("text", ["last week", "2 business days", "2026-13-01", "7"])
def test_parse_since_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError, match=r"^--since: not a date or a span"):
        parse_since(text, NOW)
