"""Replicas sharing one store: feed leases, their history, and outbox claims (on both backends)."""

from __future__ import annotations

import threading

import pytest

from tests.syncd.test_store import Clock, action


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def two(store_opener, clock):
    """Two replicas' handles on one store (on SQLite the second writes beside the first, as `shared`)."""
    with store_opener(clock=clock) as a, store_opener(clock=clock, shared=True) as b:
        a.replica, b.replica = "replica-a", "replica-b"
        yield a, b


def test_one_replica_holds_a_feed_until_its_lease_expires(two, clock):
    a, b = two
    assert a.acquire_lease("poll:zendesk", "replica-a", 30)
    assert not b.acquire_lease("poll:zendesk", "replica-b", 30)
    clock.advance(seconds=20)
    assert a.acquire_lease("poll:zendesk", "replica-a", 30)  # renewed: 30 s from now
    clock.advance(seconds=20)
    assert not b.acquire_lease("poll:zendesk", "replica-b", 30)
    assert a.holds_lease("poll:zendesk", "replica-a")
    clock.advance(seconds=11)  # replica-a stopped renewing (it died)
    assert not a.holds_lease("poll:zendesk", "replica-a")
    assert b.acquire_lease("poll:zendesk", "replica-b", 30)
    assert b.leases()["poll:zendesk"]["holder"] == "replica-b"
    history = b.lease_history("poll:zendesk")
    assert [(h["holder"], h["end_reason"]) for h in history] == [("replica-a", "expired"), ("replica-b", None)]
    assert history[0]["ended_at"] <= history[1]["started_at"]  # never two holders at once


def test_a_clean_stop_hands_the_feeds_back_at_once(two):
    a, b = two
    assert a.acquire_lease("poll:zendesk", "replica-a", 30) and a.acquire_lease("poll:linear", "replica-a", 30)
    assert a.release_leases("replica-a") == 2
    assert b.acquire_lease("poll:zendesk", "replica-b", 30)
    assert [h["end_reason"] for h in b.lease_history("poll:zendesk")] == ["released", None]
    assert b.stats()["leases"]["poll:zendesk"]["holder"] == "replica-b"


def test_claimed_heads_keep_their_group_waiting_in_order(two, clock):
    a, b = two
    for key, group in (("a1", "zendesk:1"), ("a2", "zendesk:1"), ("b1", "zendesk:2")):
        a.enqueue(action(key, group))
    assert [r.key for r in a.due_actions()] == ["a1", "b1"]
    assert b.due_actions() == []  # a2 waits behind a1, which replica-a is sending
    first = a.get_action(1)
    assert first is not None and a.mark_sending(first.id) and a.mark_done(first.id)
    assert [r.key for r in b.due_actions()] == ["a2"]
    clock.advance(seconds=a.claim_seconds + 1)  # replica-a died holding b1
    assert [r.key for r in b.due_actions()] == ["a2", "b1"]  # its own claim, and replica-a's lapsed one
    b1 = b.due_actions()[1]
    assert not a.mark_sending(b1.id)  # its claim is gone: replica-a must not send it now
    assert b.mark_sending(b1.id)


def test_replicas_claiming_at_once_never_share_an_action(two):
    a, b = two
    with a.transaction():
        for n in range(300):
            a.enqueue(action(f"k{n}", f"zendesk:{n}"))
    got: dict[str, list[int]] = {}

    def deliver(store, name):
        sent = []
        while rows := store.due_actions(limit=20):
            for row in rows:
                if store.mark_sending(row.id):  # the claim still holds: "send" it
                    sent.append(row.id)
                    store.mark_done(row.id)
        got[name] = sent

    threads = [threading.Thread(target=deliver, args=(s, n)) for s, n in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(got["a"]) & set(got["b"])  # no action sent by both
    assert sorted(got["a"] + got["b"]) == list(range(1, 301))  # each sent once


def test_a_replica_whose_lease_lapsed_commits_nothing_and_one_that_holds_it_renews_it(two, clock):
    from syncd.store import LeaseLost

    a, b = two
    assert a.acquire_lease("poll:zendesk", "replica-a", 30)
    a.fence = ("poll:zendesk", "replica-a", 30)
    clock.advance(seconds=25)
    a.set_cursor("zendesk", "page-1")  # committed, and the lease renewed: 30 s from now
    clock.advance(seconds=25)
    assert not b.acquire_lease("poll:zendesk", "replica-b", 30)
    clock.advance(seconds=31)  # a stalls past its lease; b takes the feed over
    assert b.acquire_lease("poll:zendesk", "replica-b", 30)
    with pytest.raises(LeaseLost):
        a.set_cursor("zendesk", "page-2")
    assert b.get_cursor("zendesk") == "page-1"  # the page is b's to read again
    history = b.lease_history("poll:zendesk")
    assert history[0]["ended_at"] <= history[1]["started_at"]


def test_a_lease_past_its_expiry_that_no_one_took_stays_with_its_holder(two, clock):
    a, b = two
    assert a.acquire_lease("poll:zendesk", "replica-a", 30)
    a.fence = ("poll:zendesk", "replica-a", 30)
    clock.advance(seconds=45)  # one slow page, longer than the lease; no other replica looked
    a.set_cursor("zendesk", "slow-page")  # still a's: committed, and renewed
    assert not b.acquire_lease("poll:zendesk", "replica-b", 30)
    assert a.acquire_lease("poll:zendesk", "replica-a", 30)  # one holding, not a new one
    assert [h["holder"] for h in a.lease_history("poll:zendesk")] == ["replica-a"]


def _waiting_for(store) -> int:
    """How many PostgreSQL backends wait for a lock that ``store``'s open transaction holds."""
    return store._q("SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))")[0][0]


def test_enqueue_many_counts_only_what_it_inserted_when_another_replica_queues_the_same_key(pg_store_target):
    """Two replicas queue the key "both" at the same moment: the second one's insert waits for the first's
    transaction and refuses the duplicate, and enqueue_many says so (it used to count it queued: it looked
    for known keys first, when the first replica's row was not yet visible)."""
    from syncd.store import Store

    url, schema = pg_store_target
    with Store(url, schema=schema) as a, Store(url, schema=schema) as b:
        got: dict[str, list[bool]] = {}
        with a.transaction():
            assert a.enqueue_many([action("only-a", "zendesk:1"), action("both", "zendesk:2")]) == [True, True]
            second = threading.Thread(
                target=lambda: got.setdefault("b", b.enqueue_many([action("both", "zendesk:2"), action("only-b")]))
            )
            second.start()
            for _ in range(1000):  # until b's insert waits on a's uncommitted row (a count, not a clock)
                if _waiting_for(a) or not second.is_alive():
                    break
                second.join(0.01)
            assert second.is_alive() and _waiting_for(a) == 1, "b's insert should be waiting for a's row"
        second.join()
        assert got["b"] == [False, True]
        assert sorted(r.key for r in b.list_outbox()) == ["both", "only-a", "only-b"]
