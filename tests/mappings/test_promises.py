"""Promise creation and transitions: pure, with time injected."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mappings.calendar import BusinessCalendar, Duration
from mappings.promises import (
    ISSUE_RESOLVED,
    PromiseRule,
    handoff_promises,
    new_promise,
    on_cancel,
    on_clock,
    on_issue_resolved,
    on_public_reply,
    on_solved,
    promise_from_field,
    promises_from_tags,
)
from syncd.records import PromiseState, Ref, Ticket, from_dict, to_dict

UTC = timezone.utc
TICKET = Ref("zendesk", "42")
ISSUE = Ref("linear", "a")
CAL = BusinessCalendar(
    "America/New_York", frozenset(range(5)), 9 * 60, 17 * 60, frozenset({datetime(2024, 7, 4).date()})
)
RULE = PromiseRule(
    "standard",
    CAL,
    update_within=Duration(2, "days", True),
    when_resolved=True,
    respond_within=Duration(1, "days", True),
    follow_up_field="99",
    follow_up_tags={"follow_up_tomorrow": Duration(1, "days", True)},
)
FRIDAY_EVENING = datetime(2024, 3, 8, 23, 0, tzinfo=UTC)  # 18:00 EST, DST starts Sunday


def ticket(**kw) -> Ticket:
    return Ticket(TICKET, "#42", "https://z/42", "s", "open", FRIDAY_EVENING, assignee_id="7", **kw)


def test_escalation_promises_an_update_by_tuesday_close_and_news_when_it_ships():
    update, news = handoff_promises(RULE, TICKET, [ISSUE], FRIDAY_EVENING, owner="7")
    assert update.due_at == datetime(2024, 3, 12, 21, 0, tzinfo=UTC)  # Tue 17:00 EDT
    assert update.trigger is None and update.what == "an update within 2 business days"
    assert news.trigger == ISSUE_RESOLVED and news.due_at is None
    assert {p.state for p in (update, news)} == {PromiseState.OPEN}
    assert update.id != news.id
    # Deterministic: the same escalation makes the same promises.
    assert handoff_promises(RULE, TICKET, [ISSUE], FRIDAY_EVENING, owner="7")[0].id == update.id


def test_update_promise_kept_by_a_public_reply_before_the_deadline():
    update, _ = handoff_promises(RULE, TICKET, [ISSUE], FRIDAY_EVENING)
    kept = on_public_reply(update, datetime(2024, 3, 11, 14, 0, tzinfo=UTC))
    assert kept.state is PromiseState.KEPT
    assert [c.state for c in kept.history] == [PromiseState.OPEN, PromiseState.KEPT]
    assert on_clock(kept, datetime(2024, 4, 1, tzinfo=UTC)) is kept  # final


def test_update_promise_broken_by_the_clock_at_its_deadline():
    update, _ = handoff_promises(RULE, TICKET, [ISSUE], FRIDAY_EVENING)
    assert on_clock(update, update.due_at) is update  # at the deadline: still in time
    broken = on_clock(update, update.due_at + timedelta(seconds=1))
    assert broken.state is PromiseState.BROKEN
    assert broken.history[-1].at == update.due_at and broken.history[-1].reason == "deadline passed"


def test_a_reply_observed_after_the_deadline_cannot_keep_a_broken_promise():
    update, _ = handoff_promises(RULE, TICKET, [ISSUE], FRIDAY_EVENING)
    late = on_public_reply(update, update.due_at + timedelta(hours=1))
    assert late.state is PromiseState.BROKEN


def test_ship_promise_falls_due_on_resolution_and_is_kept_by_the_reply_after_it():
    _, news = handoff_promises(RULE, TICKET, [ISSUE], FRIDAY_EVENING)
    early = on_public_reply(news, datetime(2024, 3, 11, 14, 0, tzinfo=UTC))
    assert early is news  # an update before it ships does not keep "news when it ships"
    resolved_at = datetime(2024, 3, 14, 20, 0, tzinfo=UTC)  # Thursday 16:00 EDT
    due = on_issue_resolved(news, resolved_at, respond_by=RULE.due(resolved_at, RULE.respond_within))
    assert due.state is PromiseState.DUE
    assert due.due_at == datetime(2024, 3, 15, 20, 0, tzinfo=UTC)  # Friday 16:00 EDT
    assert on_issue_resolved(due, resolved_at) is due
    kept = on_solved(due, resolved_at + timedelta(hours=2))
    assert kept.state is PromiseState.KEPT and kept.history[-1].reason == "ticket solved"


def test_due_promise_broken_when_nobody_tells_the_customer():
    _, news = handoff_promises(RULE, TICKET, [ISSUE], FRIDAY_EVENING)
    resolved_at = datetime(2024, 7, 3, 20, 0, tzinfo=UTC)  # Wed 16:00 EDT; the 4th is a holiday
    due = on_issue_resolved(news, resolved_at, respond_by=RULE.due(resolved_at, RULE.respond_within))
    assert CAL.local(due.due_at).replace(tzinfo=None) == datetime(2024, 7, 5, 16, 0)
    assert on_clock(due, datetime(2024, 7, 5, 19, 59, tzinfo=UTC)).state is PromiseState.DUE
    assert on_clock(due, datetime(2024, 7, 5, 20, 1, tzinfo=UTC)).state is PromiseState.BROKEN


def test_resolution_keeps_an_earlier_deadline():
    update, _ = handoff_promises(RULE, TICKET, [ISSUE], FRIDAY_EVENING)
    at = datetime(2024, 3, 12, 13, 0, tzinfo=UTC)
    due = on_issue_resolved(update, at, respond_by=at + timedelta(days=3))
    assert due.state is PromiseState.DUE and due.due_at == update.due_at


def test_cancel_is_final_and_only_from_open_or_due():
    update, _ = handoff_promises(RULE, TICKET, [ISSUE], FRIDAY_EVENING)
    cancelled = on_cancel(update, FRIDAY_EVENING + timedelta(hours=1), "ticket unlinked")
    assert cancelled.state is PromiseState.CANCELLED
    assert on_public_reply(cancelled, FRIDAY_EVENING + timedelta(hours=2)) is cancelled
    kept = on_public_reply(update, FRIDAY_EVENING + timedelta(hours=1))
    assert on_cancel(kept, FRIDAY_EVENING + timedelta(hours=2)) is kept


def test_follow_up_date_field_is_due_at_close_of_business_that_day():
    promise = promise_from_field(RULE, ticket(fields={"99": "2024-03-13"}), [ISSUE], FRIDAY_EVENING)
    assert promise.origin == "field" and promise.owner == "7"
    assert promise.due_at == datetime(2024, 3, 13, 21, 0, tzinfo=UTC)
    assert promise_from_field(RULE, ticket(fields={"99": "soon"}), [ISSUE], FRIDAY_EVENING) is None
    assert promise_from_field(RULE, ticket(fields={}), [ISSUE], FRIDAY_EVENING) is None


def test_follow_up_tag_makes_a_promise():
    [promise] = promises_from_tags(RULE, ticket(), ["other", "follow_up_tomorrow"], [ISSUE], FRIDAY_EVENING)
    assert promise.origin == "tag" and promise.due_at == datetime(2024, 3, 11, 21, 0, tzinfo=UTC)


def test_manual_promise_needs_a_due_date_or_trigger():
    with pytest.raises(ValueError, match="due date, a trigger"):
        new_promise(TICKET, "a call", FRIDAY_EVENING, origin="cli")
    with pytest.raises(ValueError, match="origin"):
        new_promise(TICKET, "a call", FRIDAY_EVENING, origin="email", due_at=FRIDAY_EVENING)


def test_promise_round_trips_through_the_snapshot_form():
    _, news = handoff_promises(RULE, TICKET, [ISSUE], FRIDAY_EVENING)
    due = on_issue_resolved(news, FRIDAY_EVENING + timedelta(days=3), respond_by=FRIDAY_EVENING + timedelta(days=4))
    assert from_dict(to_dict(due)) == due
