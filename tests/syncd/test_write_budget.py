"""Writes paced by a service's stated limits (GitHub: 80 comments a minute, 500 an hour),
planned in the HTTP layer before sending, never waited for by being refused; shown in
the progress line with when the writes due will be done."""

from __future__ import annotations

import collections
from datetime import datetime, timedelta, timezone

import pytest
import responses

from connectors.github.connector import creates_content
from syncd.errors import BudgetSpent
from syncd.http import HttpClient, WriteBudget
from syncd.progress import Progress

URL = "https://api.github.example"
NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
GITHUB = WriteBudget(((80, 60.0), (500, 3600.0)), creates_content, "comments")
COMMENTS = "POST /repos/{o}/{r}/issues/{n}/comments"


class Wall:
    def __init__(self) -> None:
        self.now = NOW
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def client(wall: Wall, **kwargs) -> HttpClient:
    return HttpClient("github", URL, service="GitHub", sleep=wall.sleep, wall_clock=wall, write_budget=GITHUB, **kwargs)


def test_the_next_slot_honours_every_window():
    sent = collections.deque(NOW + i * 0.5 for i in range(80))  # 80 in the last 40 s
    assert GITHUB.next_slot(sent, NOW + 40) == NOW + 60  # the minute's first one leaves at +60
    hour = collections.deque(NOW + i * 7.2 for i in range(500))  # 500 spread over an hour
    assert GITHUB.next_slot(hour, NOW + 3599) == NOW + 3600


def test_done_by_plans_a_backlog_by_the_minute_and_the_hour():
    empty: collections.deque[float] = collections.deque()
    assert GITHUB.done_by(80, empty, NOW) == NOW  # the first minute's 80 go at once
    assert GITHUB.done_by(81, empty, NOW) == NOW + 60
    assert GITHUB.done_by(500, empty, NOW) == NOW + 6 * 60  # 80 a minute: the 500th in the 7th minute
    assert GITHUB.done_by(501, empty, NOW) == NOW + 3600  # then the hour's budget is spent


@responses.activate
def test_comments_wait_for_their_slot_in_place_reads_and_edits_are_not_counted():
    responses.add(responses.POST, f"{URL}/repos/o/r/issues/1/comments", json={"id": 1}, status=201)
    responses.add(responses.GET, f"{URL}/repos/o/r/issues/1/comments", json=[])
    responses.add(responses.PATCH, f"{URL}/repos/o/r/issues/comments/1", json={"id": 1})
    wall = Wall()
    http = client(wall, max_wait=120)
    for _ in range(80):
        http.request("POST", "repos/o/r/issues/1/comments", json={}, endpoint=COMMENTS)
        http.request("GET", "repos/o/r/issues/1/comments", endpoint="GET /repos/{o}/{r}/issues/{n}/comments")
        http.request("PATCH", "repos/o/r/issues/comments/1", json={}, endpoint="PATCH comment")
    assert wall.slept == []
    http.request("POST", "repos/o/r/issues/1/comments", json={}, endpoint=COMMENTS)
    assert wall.slept == [60.0]  # the 81st waited for the minute, before it was sent


@responses.activate
def test_a_spent_hour_is_not_waited_for_nothing_is_sent_and_reads_go_on():
    responses.add(responses.POST, f"{URL}/repos/o/r/issues/1/comments", json={"id": 1}, status=201)
    responses.add(responses.GET, f"{URL}/repos/o/r", json={"visibility": "private"})
    wall = Wall()
    http = client(wall, max_wait=120)
    for _ in range(500):
        http.request("POST", "repos/o/r/issues/1/comments", json={}, endpoint=COMMENTS)
    posts = len(responses.calls)
    with pytest.raises(BudgetSpent) as err:
        http.request("POST", "repos/o/r/issues/1/comments", json={}, endpoint=COMMENTS)
    assert len(responses.calls) == posts  # not sent, so never refused
    assert err.value.until == datetime.fromtimestamp(NOW + 3600, timezone.utc)
    assert "GitHub allows no more comments before" in str(err.value)
    assert http.blocked_until is None
    http.request("GET", "repos/o/r", endpoint="GET /repos/{o}/{r}")  # reads are not held back
    assert http.writes_done_by(1) == datetime.fromtimestamp(NOW + 3600, timezone.utc)


def test_the_progress_line_shows_the_writes_due_and_when_the_limits_let_them_be_done():
    lines: list[str] = []
    start = datetime.fromtimestamp(NOW, timezone.utc)
    ticks = iter(range(0, 1000, 5))
    progress = Progress(lines.append, live=True, monotonic=lambda: float(next(ticks)), wall=lambda: start)
    progress.page("zendesk", 100, 620, [start - timedelta(days=1), start])
    progress.feed_done("zendesk")
    progress.delivering(620)
    progress.paced("GitHub", 620, start + timedelta(hours=1, minutes=2))
    assert "GitHub: 620 writes due, done by about 23:16 UTC" in progress.line()
    progress.sent(delivered=10)
    assert progress.eta() is not None and progress.eta() >= 3720  # never sooner than the limits allow


def test_delivery_holds_a_spent_budgets_writes_without_parking_the_connector(tmp_path):
    from mappings.planner import issue_group
    from syncd.delivery import Deliverer
    from syncd.records import Ref
    from syncd.store import Store
    from syncd.writes import Action, IssueComment
    from tests.syncd.test_delivery import T0, Clock, ScriptedHelpdesk, ScriptedTracker

    clock = Clock()
    store = Store(tmp_path / "syncd.db", clock=clock)
    tracker = ScriptedTracker("github")
    until = T0 + timedelta(minutes=40)
    tracker.outcomes["I-1"] = [BudgetSpent("github", "no more comments", until=until, service="GitHub")]
    deliverer = Deliverer(store, {"zendesk": ScriptedHelpdesk(), "github": tracker}, clock=clock)
    for n, issue in enumerate(["I-1", "I-2", "I-3"]):
        store.enqueue(Action(f"{n:020x}", "github", issue, IssueComment("hi"), issue_group(Ref("github", issue))))
    try:
        report = deliverer.run()
        assert report.waiting == 1 and report.failed == 0
        assert [t for t, _ in tracker.sent] == ["I-1"]  # the others were not tried in this run
        assert deliverer.parking.until("github") is None  # polls go on
        first = store.list_outbox()[0]
        assert first.state == "pending" and first.attempts == 0 and first.next_attempt_at == until
        clock.advance(40 * 60)
        report = deliverer.run()
        assert report.done == 3
    finally:
        store.close()


def test_the_counted_writes_outlive_the_process_so_a_new_run_does_not_start_the_windows_afresh(tmp_path):
    from syncd.delivery import Deliverer
    from syncd.store import Store
    from tests.syncd.test_delivery import Clock, ScriptedHelpdesk, ScriptedTracker

    class Paced(ScriptedTracker):
        def make_http(self) -> HttpClient:
            return HttpClient(
                self.name, "http://127.0.0.1:9", write_budget=GITHUB, wall_clock=lambda: clock().timestamp()
            )

    clock = Clock()
    store = Store(tmp_path / "syncd.db", clock=clock)
    try:
        first = Paced("github")
        now = clock().timestamp()
        first.http.budget_sent.extend(now - 4000 + i for i in range(3))  # more than an hour ago: forgotten
        first.http.budget_sent.extend(now - 30 + i * 0.1 for i in range(80))  # the last minute's 80
        Deliverer(store, {"zendesk": ScriptedHelpdesk(), "github": first}, clock=clock).run()
        again = Paced("github")  # a new process
        Deliverer(store, {"zendesk": ScriptedHelpdesk(), "github": again}, clock=clock).run()
        assert len(again.http.budget_sent) == 80
        assert again.http.writes_done_by(1) == datetime.fromtimestamp(now + 30, timezone.utc)
    finally:
        store.close()
