"""Delivery of the outbox, against scripted connectors (no network).

A scripted connector answers each write from a queue of outcomes (an error
to raise, or success) and records what it was asked, so each test can say
exactly how many writes went out and in what order.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connectors.base import ConnectorConfig, Helpdesk, Tracker, WriteResult
from mappings.planner import issue_group, ticket_group
from syncd.delivery import Deliverer
from syncd.errors import ApiError, AuthError, ConfigError, Conflict, Gone, NotFound, PayloadError, TransientError
from syncd.http import HttpClient
from syncd.records import Ref, Ticket
from syncd.store import Store
from syncd.writes import (
    Action,
    CreateIssue,
    DraftText,
    IssueComment,
    TicketUpdate,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Scripted:
    """Shared by both fakes: outcomes per target, a log of sends, markers that landed."""

    def __init__(self) -> None:
        self.outcomes: dict[str, list] = {}
        self.sent: list[tuple[str, str]] = []  # (target, marker)
        self.landed: set[tuple[str, str]] = set()
        self.marker_checks = 0

    def make_http(self) -> HttpClient:
        return HttpClient(self.name, "http://127.0.0.1:9")  # never used: no request is sent

    def check(self) -> str:
        return "scripted"

    def poll(self, cursor):
        return iter(())

    def _write(self, target: str, marker: str) -> WriteResult:
        self.sent.append((target, marker))
        queue = self.outcomes.get(target) or []
        outcome = queue.pop(0) if queue else None
        if isinstance(outcome, tuple):  # (error, landed anyway)
            outcome, landed = outcome
            if landed:
                self.landed.add((target, marker))
        if isinstance(outcome, Exception):
            raise outcome
        self.landed.add((target, marker))
        return WriteResult(updated_at=T0, id=target)

    def find_marker(self, target: str, key: str) -> bool:
        self.marker_checks += 1
        return (target, key) in self.landed


class ScriptedHelpdesk(Scripted, Helpdesk):
    kind = "scripted-helpdesk"
    config_model = ConnectorConfig

    def __init__(self, name: str = "zendesk") -> None:
        Scripted.__init__(self)
        Helpdesk.__init__(self, name, ConnectorConfig(kind=self.kind, url="http://127.0.0.1:9"))
        self.bulk_calls: list[list[str]] = []
        self.hints: list = []  # the snapshot given to each update_ticket (None: the connector reads the ticket)

    def ticket_url(self, ticket_id):
        return f"http://127.0.0.1:9/agent/tickets/{ticket_id}"

    def ticket_url_pattern(self):
        return r"http://127\.0\.0\.1:9/agent/tickets/(?P<id>\d+)"

    def get_ticket(self, ticket_id):
        raise NotImplementedError

    def comments(self, ticket_id, after=None):
        return []

    def update_ticket(self, ticket_id, update: TicketUpdate, key, current=None):
        self.hints.append(current)
        return self._write(ticket_id, key)

    def update_tickets(self, ticket_ids, update, key):
        self.bulk_calls.append(list(ticket_ids))
        return {t: self._write(t, key) for t in ticket_ids}


class ScriptedTracker(Scripted, Tracker):
    kind = "scripted-tracker"
    config_model = ConnectorConfig

    def __init__(self, name: str = "linear") -> None:
        Scripted.__init__(self)
        Tracker.__init__(self, name, ConnectorConfig(kind=self.kind, url="http://127.0.0.1:9"))
        self.public_teams: set[str] = set()
        self.drafts: list = []  # what create_issue was given

    def link_patterns(self):
        return []

    def get_issue(self, ref):
        raise NotImplementedError

    def add_comment(self, issue_id, body, key, *, customer_data=False):
        return self._write(issue_id, key)

    def attach_ticket(self, issue_id, url, title, subtitle, key):
        return self._write(issue_id, key)

    def is_private(self, team):
        return team not in self.public_teams

    def create_issue(self, team, draft, key):
        self.drafts.append(draft)
        result = self._write(team, key)
        return WriteResult(updated_at=result.updated_at, id=f"new-{team}")

    def find_created(self, team, key):
        self.marker_checks += 1
        return f"new-{team}" if (team, key) in self.landed else None


def escalation(store: Store, team: str, key: str) -> int:
    store.enqueue(
        Action(
            key,
            "linear",
            team,
            CreateIssue(
                team,
                DraftText("Export fails for Northwind", "Northwind, enterprise"),
                DraftText("Customer report T-1", "T-1"),
                ticket="7",
            ),
            f"escalate:{team}",
        )
    )
    return next(r.id for r in store.list_outbox() if r.key == key)


@pytest.fixture
def env(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "syncd.db", clock=clock)
    helpdesk, tracker = ScriptedHelpdesk(), ScriptedTracker()
    deliverer = Deliverer(
        store,
        {"zendesk": helpdesk, "linear": tracker},
        max_attempts=3,
        backoff_base=30.0,
        backoff_max=600.0,
        clock=clock,
    )
    yield store, helpdesk, tracker, deliverer, clock
    store.close()


def note(store: Store, ticket: str, key: str, text: str = "a note") -> int:
    store.enqueue(
        Action(key, "zendesk", ticket, TicketUpdate(note=f"{text} {key}"), ticket_group(Ref("zendesk", ticket)))
    )
    return next(r.id for r in store.list_outbox() if r.key == key)


def state(store: Store, action_id: int) -> str:
    return store.get_action(action_id).state


def test_an_action_that_keeps_failing_goes_to_dead_letter_with_its_last_error(env):
    store, helpdesk, _, deliverer, clock = env
    helpdesk.outcomes["1"] = [TransientError("zendesk", f"HTTP 500 (try {n})", status=500) for n in (1, 2, 3, 4)]
    action = note(store, "1", "k1")
    for _ in range(5):
        deliverer.run()
        clock.advance(3600)
    row = store.get_action(action)
    assert row.state == "dead" and row.attempts == 3
    assert row.last_error == "zendesk: HTTP 500 (try 3)"
    assert len(helpdesk.sent) == 3  # bounded: no fourth try
    assert any(e.kind == "dead_letter" for e in store.history(Ref("zendesk", "1")))


def test_backoff_grows_and_honours_retry_after(env):
    store, helpdesk, _, deliverer, clock = env
    helpdesk.outcomes["1"] = [
        TransientError("zendesk", "HTTP 503", status=503, retry_after=900.0),
        TransientError("zendesk", "HTTP 500", status=500),
    ]
    action = note(store, "1", "k1")
    deliverer.run()
    assert store.get_action(action).next_attempt_at == T0 + timedelta(seconds=900)  # Retry-After beats 30 s
    deliverer.run()
    assert len(helpdesk.sent) == 1  # not due yet
    clock.advance(900)
    deliverer.run()
    assert store.get_action(action).next_attempt_at == clock.now + timedelta(seconds=60)  # 30 s doubled
    clock.advance(60)
    deliverer.run()
    assert state(store, action) == "done" and len(helpdesk.sent) == 3


def test_later_writes_to_the_same_ticket_wait_behind_a_dead_one_and_keep_their_order(env):
    store, helpdesk, _, deliverer, clock = env
    helpdesk.outcomes["1"] = [Conflict("zendesk", "ticket 1 is closed", status=422)]
    first, second = note(store, "1", "k1", "first"), note(store, "1", "k2", "second")
    other = note(store, "2", "k3")
    deliverer.run()
    assert state(store, first) == "dead" and state(store, second) == "pending"
    assert state(store, other) == "done"  # another ticket is not held up
    clock.advance(7200)
    deliverer.run()
    assert state(store, second) == "pending" and [t for t, _ in helpdesk.sent].count("1") == 1

    assert store.retry_action(first)
    deliverer.run()
    assert state(store, first) == "done" and state(store, second) == "done"
    assert [m for t, m in helpdesk.sent if t == "1"] == ["k1", "k1", "k2"]


def test_dropping_a_dead_action_lets_the_ones_behind_it_go(env):
    store, helpdesk, _, deliverer, _ = env
    helpdesk.outcomes["1"] = [Conflict("zendesk", "closed", status=422)]
    first, second = note(store, "1", "k1"), note(store, "1", "k2")
    deliverer.run()
    assert store.drop_action(first)
    deliverer.run()
    assert state(store, first) == "dropped" and state(store, second) == "done"


@pytest.mark.parametrize(
    "failure",
    [
        TransientError("zendesk", "read timeout after sending", maybe_applied=True),
        PayloadError("zendesk", "update: the response has no 'ticket'"),
    ],
    ids=["timeout", "unreadable answer"],
)
def test_a_write_that_may_have_landed_is_looked_for_before_it_is_sent_again(env, failure):
    store, helpdesk, _, deliverer, clock = env
    helpdesk.outcomes["1"] = [(failure, True)]  # the service applied it, then the answer was lost
    action = note(store, "1", "k1")
    deliverer.run()
    row = store.get_action(action)
    assert row.state == "sending" and row.maybe_applied
    clock.advance(3600)
    report = deliverer.run()
    assert report.already == 1 and state(store, action) == "done"
    assert len(helpdesk.sent) == 1 and helpdesk.marker_checks == 1


def test_a_write_that_may_have_failed_before_landing_is_sent_again_after_the_check(env):
    store, helpdesk, _, deliverer, clock = env
    helpdesk.outcomes["1"] = [(TransientError("zendesk", "connection lost", maybe_applied=True), False)]
    action = note(store, "1", "k1")
    deliverer.run()
    clock.advance(3600)
    deliverer.run()
    assert state(store, action) == "done" and helpdesk.marker_checks == 1 and len(helpdesk.sent) == 2


def test_refused_credentials_pause_that_connector_only(env):
    store, helpdesk, tracker, deliverer, clock = env
    helpdesk.outcomes["1"] = [AuthError("zendesk", "HTTP 401", status=401)]
    a = note(store, "1", "k1")
    b = note(store, "2", "k2")
    store.enqueue(Action("k3", "linear", "I1", IssueComment("hi"), issue_group(Ref("linear", "I1"))))
    report = deliverer.run()
    assert deliverer.paused == {"zendesk": "zendesk: HTTP 401"}
    assert len(helpdesk.sent) == 1  # no storm: ticket 2 was not tried with the same credentials
    assert tracker.sent == [("I1", "k3")]
    assert state(store, a) == "pending" and state(store, b) == "pending"
    assert report.errors == ["zendesk: HTTP 401"]
    clock.advance(3600)
    deliverer.run()
    assert len(helpdesk.sent) == 1  # still paused until the daemon sees the credentials work
    deliverer.paused.clear()
    deliverer.run()
    assert state(store, a) == "done" and state(store, b) == "done"


def test_equal_updates_to_many_tickets_go_out_as_one_bulk_write(env):
    store, helpdesk, _, deliverer, _ = env
    for ticket in ("1", "2", "3"):
        store.enqueue(
            Action(
                f"k{ticket}",
                "zendesk",
                ticket,
                TicketUpdate(note="ENG-1 moved", marker="m1"),
                ticket_group(Ref("zendesk", ticket)),
            )
        )
    report = deliverer.run()
    assert helpdesk.bulk_calls == [["1", "2", "3"]] and report.done == 3 and report.requests_saved == 2


def test_a_stop_request_ends_delivery_between_actions(env):
    store, helpdesk, _, _, clock = env
    calls = []
    deliverer = Deliverer(
        store,
        {"zendesk": helpdesk},
        clock=clock,
        stop_requested=lambda: len(helpdesk.sent) >= 1 and not calls.append(1),
    )
    for ticket in ("1", "2", "3"):
        note(store, ticket, f"k{ticket}", text=f"different {ticket}")
    deliverer.run()
    assert len(helpdesk.sent) == 1
    assert store.outbox_counts()["pending"] == 2 and store.outbox_counts()["sending"] == 0


def test_an_escalation_sends_the_draft_for_what_the_team_is_when_it_is_sent(env):
    store, _, tracker, deliverer, _ = env
    tracker.public_teams = {"acme/sdk"}
    escalation(store, "ENG", "e1")
    escalation(store, "acme/sdk", "e2")
    deliverer.run()
    assert [d.title for d in tracker.drafts] == ["Export fails for Northwind", "Customer report T-1"]
    assert "Northwind" not in tracker.drafts[1].body
    done = {r.key: r.result for r in store.list_outbox(state="done")}
    assert done["e1"]["id"] == "new-ENG" and done["e2"]["id"] == "new-acme/sdk"


def test_an_interrupted_escalation_is_found_by_its_marker_not_created_again(env):
    store, _, tracker, deliverer, clock = env
    action = escalation(store, "ENG", "e3")
    tracker.outcomes["ENG"] = [(TransientError("linear", "reset", maybe_applied=True), True)]
    deliverer.run()  # the issue was created, but the answer was lost
    assert store.get_action(action).state == "sending"
    clock.advance(3600)
    report = deliverer.run()
    assert report.already == 1 and len(tracker.drafts) == 1  # found by its marker, not created again
    assert store.get_action(action).result["id"] == "new-ENG"  # the id the engine links


def test_a_tag_removal_trusts_the_snapshot_only_once_a_poll_has_seen_syncds_own_tag_write(env):
    store, helpdesk, _, deliverer, _ = env
    ref = Ref("zendesk", "5")
    store.put_snapshot(Ticket(ref, "#5", "u", "s", "open", T0, tags=("syncd_stage_new",)))

    def swap(key: str, old: str, new: str) -> None:
        store.enqueue(Action(key, "zendesk", "5", TicketUpdate(add_tags=(new,), remove_tags=(old,)), ticket_group(ref)))
        deliverer.run()

    swap("s1", "syncd_stage_new", "syncd_stage_assigned")
    assert helpdesk.hints[-1] is not None  # syncd never wrote tags here: the snapshot saves a read
    assert store.get_meta(ref).get("tags_unseen")
    swap("s2", "syncd_stage_assigned", "syncd_stage_waiting")
    assert helpdesk.hints[-1] is None  # the snapshot predates syncd's own tag write: read the ticket
    store.set_meta(ref, tags_unseen=None)  # what the engine does when a poll stores the ticket again
    swap("s3", "syncd_stage_waiting", "syncd_stage_resolved")
    assert helpdesk.hints[-1] is not None


def test_a_write_naming_a_field_the_helpdesk_cannot_take_goes_to_dead_letter_with_the_reason(env):
    store, helpdesk, _, deliverer, _ = env
    helpdesk.outcomes["9"] = [
        ConfigError(["connector zendesk: custom field id 'stage' is not a number; use the field's numeric id"])
    ]
    action = note(store, "9", "bad-field")
    report = deliverer.run()  # the cycle goes on
    assert report.dead == 1 and state(store, action) == "dead"
    assert "custom field id 'stage' is not a number" in store.get_action(action).last_error


def comment(store: Store, issue: str, key: str) -> int:
    store.enqueue(Action(key, "linear", issue, IssueComment(f"comment {key}"), issue_group(Ref("linear", issue))))
    return next(r.id for r in store.list_outbox() if r.key == key)


def test_a_write_to_a_gone_issue_drops_every_write_waiting_for_it_instead_of_dead_letters(env):
    store, _, tracker, deliverer, _ = env
    tracker.outcomes["i1"] = [Gone("linear", "SyncdCommentCreate: Entity not found: Issue")]
    first, second = comment(store, "i1", "c1"), comment(store, "i1", "c2")
    report = deliverer.run()
    assert report.gone == {Ref("linear", "i1"): "linear: SyncdCommentCreate: Entity not found: Issue"}
    assert report.dead == 0 and report.dropped == 2 and report.errors == []
    assert [state(store, a) for a in (first, second)] == ["dropped", "dropped"]
    assert "no longer visible" in store.get_action(second).last_error
    assert len(tracker.sent) == 1  # the second was never sent


def test_a_write_to_an_issue_with_a_tombstone_is_dropped_unsent(env):
    store, _, tracker, deliverer, _ = env
    store.mark_issue_gone(Ref("linear", "i1"), "ENG-1", "the periodic check: deleted")
    action = comment(store, "i1", "c1")
    report = deliverer.run()
    assert state(store, action) == "dropped" and tracker.sent == []
    assert report.dead == 0 and report.dropped == 1


def test_a_write_an_earlier_store_may_have_made_is_looked_for_before_its_first_send(env):
    """What a lost or restored store plans again: checked by marker first, sent only when absent."""
    store, helpdesk, tracker, deliverer, _ = env
    made = note(store, "1", "k1")
    helpdesk.landed.add(("1", "k1"))  # an earlier run with another store wrote it
    fresh = note(store, "2", "k2")
    create = escalation(store, "ENG", "e9")
    tracker.landed.add(("ENG", "e9"))
    for key in ("k1", "k2", "e9"):
        assert store.check_before_send(key)
    report = deliverer.run()
    assert helpdesk.sent == [("2", "k2")] and tracker.drafts == []  # only the absent note went out
    assert report.already == 2 and helpdesk.marker_checks == 2 and tracker.marker_checks == 1
    assert store.get_action(create).result["id"] == "new-ENG"  # found, linked by the engine as if created
    assert state(store, made) == state(store, fresh) == "done"


class Refusing(ScriptedTracker):
    """A tracker whose credentials work (or not) while it refuses creates."""

    def __init__(self, credentials_work: bool) -> None:
        super().__init__()
        self.credentials_work = credentials_work
        self.checks = 0

    def check(self) -> str:
        self.checks += 1
        if not self.credentials_work:
            raise AuthError("linear", "HTTP 401", status=401)
        return "scripted"


@pytest.mark.parametrize(
    "error, why",
    [
        (NotFound("linear", "no Linear team with key 'NOPE'"), "no_such_place"),
        (Conflict("linear", "HTTP 422 Validation Failed", status=422), "refused"),
        (ApiError("linear", "HTTP 400 project is required", status=400), "refused"),
        (Gone("linear", "HTTP 410 Issues are disabled for this repo", status=410), "refused"),
        (AuthError("linear", "HTTP 403 Resource not accessible", status=403), "permission"),
    ],
)
def test_a_create_refused_for_good_goes_to_the_dead_letter_at_once_with_why(tmp_path, error, why):
    clock = Clock()
    with Store(tmp_path / "syncd.db", clock=clock) as store:
        tracker = Refusing(credentials_work=True)
        deliverer = Deliverer(store, {"zendesk": ScriptedHelpdesk(), "linear": tracker}, max_attempts=8, clock=clock)
        tracker.outcomes["NOPE"] = [error]
        action = escalation(store, "NOPE", "e1")
        report = deliverer.run()
        row = store.get_action(action)
        assert row.state == "dead" and row.attempts == 1 and report.dead == 1  # not tried 8 times
        assert row.result == {"refused": why}
        assert deliverer.paused == {}  # the account works: nothing else is held up
        assert [r.id for r in store.refused_creates()] == [action]


def test_a_refused_create_with_refused_credentials_pauses_the_connector_instead(tmp_path):
    clock = Clock()
    with Store(tmp_path / "syncd.db", clock=clock) as store:
        tracker = Refusing(credentials_work=False)
        deliverer = Deliverer(store, {"zendesk": ScriptedHelpdesk(), "linear": tracker}, clock=clock)
        tracker.outcomes["ENG"] = [AuthError("linear", "HTTP 401", status=401)]
        action = escalation(store, "ENG", "e1")
        deliverer.run()
        assert state(store, action) == "pending" and "linear" in deliverer.paused
        assert store.refused_creates() == []
