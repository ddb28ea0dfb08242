"""Delivery of tracker comments and attachments in batches (syncd.delivery.tracker_batches),
against a scripted tracker that takes several writes a request (no network)."""

from __future__ import annotations

import pytest

from connectors.base import BatchedWrite, SlotRecord, WriteResult
from mappings.planner import issue_group
from syncd.delivery import Deliverer, tracker_batches
from syncd.errors import Gone, TransientError
from syncd.records import Ref
from syncd.store import Store
from syncd.writes import Action, AttachTicket, IssueComment, TicketUpdate, UpsertComment
from tests.syncd.test_delivery import T0, Clock, ScriptedHelpdesk, ScriptedTracker


class BatchingTracker(ScriptedTracker):
    """Takes up to three writes a request; ``refuse`` makes one issue's write fail as Linear's
    would (the others of its batch answered 'maybe applied'); ``lose`` loses the answer once."""

    write_batch = 3

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []  # the targets of each batch sent
        self.lookups: list[list[str]] = []  # the targets of each landed_batch
        self.order: list[tuple[str, str]] = []  # (target, marker) in the order sent
        self.refuse: set[str] = set()
        self.lose = False

    def send_batch(self, writes: list[BatchedWrite]) -> list[WriteResult | Exception]:
        assert len(writes) <= self.write_batch
        self.batches.append([w.issue_id for w in writes])
        self.order.extend((w.issue_id, w.key) for w in writes)
        results: list[WriteResult | Exception] = []
        refused = next((n for n, w in enumerate(writes) if w.issue_id in self.refuse), None)
        for n, w in enumerate(writes):
            if refused is not None and n > refused:
                results.append(TransientError(self.name, "not run", maybe_applied=True))
                continue
            if n == refused:
                results.append(Gone(self.name, "Entity not found: Issue"))
                continue
            self.landed.add((w.issue_id, w.key))
            results.append(
                TransientError(self.name, "no answer", maybe_applied=True)
                if refused is not None
                else WriteResult(updated_at=T0, id=f"a-{w.issue_id}")
            )
        if self.lose:
            self.lose = False
            raise TransientError(self.name, "read timeout after sending", maybe_applied=True)
        return results

    def landed_batch(self, writes: list[BatchedWrite]) -> list[bool]:
        self.lookups.append([w.issue_id for w in writes])
        return [(w.issue_id, w.key) in self.landed for w in writes]


@pytest.fixture
def env(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "syncd.db", clock=clock)
    helpdesk, tracker = ScriptedHelpdesk(), BatchingTracker()
    deliverer = Deliverer(store, {"zendesk": helpdesk, "linear": tracker}, max_attempts=3, clock=clock)
    yield store, tracker, deliverer
    store.close()


def attach(store: Store, issue: str, n: int) -> None:
    write = AttachTicket(f"https://desk.example/tickets/{n}", f"Ticket #{n}", "")
    store.enqueue(Action(f"{n:020x}", "linear", issue, write, issue_group(Ref("linear", issue))))


def test_writes_go_in_batches_of_the_trackers_size_each_issues_in_its_order(env):
    store, tracker, deliverer = env
    for n in range(7):
        attach(store, f"I-{n % 4}", n)  # four issues: 2, 2, 2 and 1 writes
    store.enqueue(Action("c" * 20, "linear", "I-9", IssueComment("hello"), issue_group(Ref("linear", "I-9"))))
    report = deliverer.run()
    assert report.done == 8 and report.failed == report.dead == 0
    assert [len(b) for b in tracker.batches] == [3, 3, 2]  # 8 writes, 3 requests
    for issue in ("I-0", "I-1", "I-2"):
        keys = [k for i, k in tracker.order if i == issue]
        assert keys == sorted(keys) and len(keys) == 2  # in the order they were queued
    assert tracker.sent == []  # nothing went one by one


def test_a_write_that_fails_holds_back_the_later_writes_of_its_issue(env):
    store, tracker, deliverer = env
    for n in range(3):
        attach(store, "I-0", n)
    attach(store, "I-1", 3)
    tracker.write_batch = 2  # batches [I-0, I-0] and [I-0, I-1]
    tracker.lose = True  # the first batch's answer is lost: both uncertain
    report = deliverer.run()
    assert report.failed == 2 and report.done == 1
    assert tracker.batches == [["I-0", "I-0"], ["I-1"]]  # I-0's third write waits behind the two
    assert [r.state for r in store.list_outbox()] == ["sending", "sending", "pending", "done"]


def test_a_refused_write_is_dropped_and_the_rest_of_its_batch_delivered_once_in_the_same_run(env):
    store, tracker, deliverer = env
    for n in range(3):
        attach(store, f"I-{n}", n)
    tracker.refuse = {"I-1"}
    report = deliverer.run()
    assert report.dropped == 1 and report.dead == 0
    assert report.done + report.already == 2
    # I-0 landed before the refusal: found by its marker, not sent again; I-2 was not run: sent
    assert tracker.lookups == [["I-0", "I-2"]]
    assert tracker.batches == [["I-0", "I-1", "I-2"], ["I-2"]] and tracker.sent == []
    assert sorted(t for t, _ in tracker.landed) == ["I-0", "I-2"]


def test_a_lost_answer_looks_for_the_whole_batch_in_one_request_and_sends_none_again(env):
    store, tracker, deliverer = env
    for n in range(3):
        attach(store, f"I-{n}", n)
    tracker.lose = True
    report = deliverer.run()
    assert report.failed == 3  # uncertain: due again after the backoff
    assert all(r.state == "sending" for r in store.list_outbox())
    deliverer.clock.advance(3600)  # type: ignore[attr-defined]
    report = deliverer.run()
    assert report.already == 3 and report.done == 0
    assert tracker.lookups == [["I-0", "I-1", "I-2"]]
    assert len(tracker.batches) == 1


def test_lone_writes_and_other_kinds_are_left_to_the_single_path(env):
    store, tracker, deliverer = env
    attach(store, "I-1", 1)
    store.enqueue(Action("d" * 20, "zendesk", "5", TicketUpdate(note="hi"), "ticket:zendesk:5"))
    batches, rest = tracker_batches(store.due_actions(), deliverer.connectors)
    assert batches == [] and len(rest) == 2


class ContextCommentTracker(ScriptedTracker):
    """Shows tickets on an issue in one comment (GitHub's context comment): several in one write."""

    attaches_many = True

    def __init__(self) -> None:
        super().__init__("github")
        self.many: list[tuple[str, list[str], str]] = []  # (issue, ticket urls, marker)

    def attach_tickets(self, issue_id, tickets, key):
        self.many.append((issue_id, [url for url, _, _ in tickets], key))
        return self._write(issue_id, key)


def test_the_tickets_of_one_issue_are_shown_in_one_write_where_the_tracker_can(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "syncd.db", clock=clock)
    tracker = ContextCommentTracker()
    deliverer = Deliverer(store, {"zendesk": ScriptedHelpdesk(), "github": tracker}, clock=clock)

    def attach_gh(issue: str, n: int) -> None:
        write = AttachTicket(f"https://desk.example/tickets/{n}", f"Ticket #{n}", "")
        store.enqueue(Action(f"{n:020x}", "github", issue, write, issue_group(Ref("github", issue))))

    try:
        for n in range(3):
            attach_gh("o/r#1", n)
        attach_gh("o/r#2", 3)
        report = deliverer.run()
        assert report.done == 4 and report.requests_saved == 2
        urls = [f"https://desk.example/tickets/{n}" for n in range(3)]
        assert tracker.many == [("o/r#1", urls, f"{2:020x}")]  # marked with the last write's key
        assert tracker.sent == [("o/r#1", f"{2:020x}"), ("o/r#2", f"{3:020x}")]  # o/r#2's alone
        # after a crash: the interrupted ones are looked for by their markers first
        for n in range(4, 6):
            attach_gh("o/r#1", n)
        for row in store.list_outbox("pending"):
            store.mark_sending(row.id)
        tracker.landed.add(("o/r#1", f"{4:020x}"))
        report = deliverer.run()
        assert report.already == 1 and report.done == 1 and tracker.marker_checks == 2
    finally:
        store.close()


# -- slot comments (the demand comment): what the store knows of them ----------------------------


class SlotTracker(BatchingTracker):
    """Takes slot comments in its batches (and alone) and keeps what the store told it of each,
    with the store's bookkeeping of the issue as it stood while the request went."""

    batches_slots = True

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.told: list[tuple[str, SlotRecord | None, dict]] = []
        self.comments: dict[str, str] = {}  # issue -> the comment id it made there

    def _tell(self, issue: str, known: SlotRecord | None) -> WriteResult:
        self.told.append((issue, known, dict(self.store.get_meta(Ref(self.name, issue)))))
        comment = self.comments.setdefault(issue, f"c-{issue}")
        return WriteResult(updated_at=T0, id=comment)

    def send_batch(self, writes: list[BatchedWrite]) -> list[WriteResult | Exception]:
        if not all(isinstance(w.write, UpsertComment) for w in writes):
            return super().send_batch(writes)
        self.batches.append([w.issue_id for w in writes])
        out: list[WriteResult | Exception] = []
        for w in writes:
            self.landed.add((w.issue_id, w.key))
            out.append(self._tell(w.issue_id, w.slot))
        if self.lose:
            self.lose = False
            raise TransientError(self.name, "read timeout after sending", maybe_applied=True)
        return out

    def upsert_comment(self, issue_id, body, key, slot, *, customer_data=False, known=None):
        self.landed.add((issue_id, key))
        return self._tell(issue_id, known)


def demand(store: Store, issue: str, version: int) -> None:
    write = UpsertComment("demand", f"{version} tickets")
    key = f"{version:04x}{int(issue.removeprefix('I-')):016x}"
    store.enqueue(Action(key, "linear", issue, write, issue_group(Ref("linear", issue))))


@pytest.fixture
def slots(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "syncd.db", clock=clock)
    tracker = SlotTracker(store)
    deliverer = Deliverer(store, {"zendesk": ScriptedHelpdesk(), "linear": tracker}, max_attempts=3, clock=clock)
    yield store, tracker, deliverer
    store.close()


def test_slot_comments_are_batched_and_told_what_the_store_knows(slots):
    store, tracker, deliverer = slots
    for issue in ("I-1", "I-2"):
        demand(store, issue, 1)
    assert deliverer.run().done == 2
    assert tracker.batches == [["I-1", "I-2"]] and tracker.sent == []
    # The first write: the store held none; it noted the write before the request went.
    assert [(i, k) for i, k, _ in tracker.told] == [("I-1", SlotRecord(False)), ("I-2", SlotRecord(False))]
    assert all(meta["slot_comments"] == {"demand": ""} for _, _, meta in tracker.told)
    assert store.get_meta(Ref("linear", "I-1"))["slot_comments"] == {"demand": "c-I-1"}
    # The next one: the comment's id, from the store (a lone write goes the single way).
    demand(store, "I-1", 2)
    assert deliverer.run().done == 1
    assert tracker.told[-1][:2] == ("I-1", SlotRecord(True, "c-I-1"))


def test_a_slot_write_whose_answer_was_lost_is_found_by_marker_and_the_store_no_longer_vouches(slots):
    store, tracker, deliverer = slots
    for issue in ("I-1", "I-2"):
        demand(store, issue, 1)
    tracker.lose = True
    assert deliverer.run().failed == 2
    deliverer.clock.advance(3600)  # type: ignore[attr-defined]
    report = deliverer.run()
    assert report.already == 2 and len(tracker.batches) == 1  # found by their markers, not sent again
    # Written, but which comment is not known: the tracker must look, not create.
    assert store.get_meta(Ref("linear", "I-1"))["slot_comments"] == {"demand": ""}
    demand(store, "I-1", 2)
    deliverer.run()
    assert tracker.told[-1][:2] == ("I-1", SlotRecord(True, None))
