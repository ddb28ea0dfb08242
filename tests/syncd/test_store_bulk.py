"""The store's bulk reads and writes (a page's bookkeeping in one statement per kind of row):
each gives what the one-record method gives, on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from mappings.promises import new_promise, on_issue_resolved
from syncd.records import Event, Issue, PromiseState, Ref, Stage, StateCategory, Ticket
from syncd.writes import Action, TicketUpdate

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
A, B, C = Ref("zendesk", "1"), Ref("zendesk", "2"), Ref("zendesk", "3")
ISSUE, ISSUE2 = Ref("linear", "u1"), Ref("linear", "u2")


@pytest.fixture
def store(store_opener):
    with store_opener(clock=lambda: T0) as s:
        yield s


def ticket(ref: Ref, subject: str, at: datetime = T0) -> Ticket:
    return Ticket(
        ref=ref, key=f"#{ref.id}", url=f"https://h.example/{ref.id}", subject=subject, status="open", updated_at=at
    )


def issue(ref: Ref, title: str, at: datetime = T0) -> Issue:
    return Issue(
        ref=ref,
        key=f"ENG-{ref.id}",
        url=f"https://t.example/{ref.id}",
        title=title,
        state=StateCategory.UNSTARTED,
        state_name="Todo",
        updated_at=at,
    )


def test_stage_histories_read_many_as_stage_history_reads_one(store):
    store.put_stages(
        {A: [(Stage.NEW, T0)], B: [(Stage.NEW, T0), (Stage.ASSIGNED, T0 + timedelta(hours=1))]},
    )
    got = store.stage_histories([A, B, C])
    assert got == {A: store.stage_history(A), B: store.stage_history(B), C: []}
    assert got[B] == [(Stage.NEW, T0), (Stage.ASSIGNED, T0 + timedelta(hours=1))]
    store.put_stages({A: [(Stage.NEW, T0), (Stage.WAITING, T0 + timedelta(days=1))]})  # replaced as a whole
    assert store.stage_history(A) == [(Stage.NEW, T0), (Stage.WAITING, T0 + timedelta(days=1))]
    assert store.stage_histories([]) == {}
    with pytest.raises(ValueError, match="needs at least one entry"):
        store.put_stages({C: []})


def test_put_stages_is_found_by_the_sweep_as_put_stage_is(store):
    store.put_stages({A: [(Stage.ASSIGNED, T0)], B: [(Stage.RESOLVED, T0)]})
    assert [ref for ref, _ in store.stage_histories_page(None, 10, [Stage.ASSIGNED.value])] == [A]


def test_put_metas_replaces_each_records_bookkeeping_whole(store):
    store.set_meta(A, kept="no", other=1)
    merged = {**store.get_meta(A), "kept": "yes"}
    merged.pop("other")
    store.put_metas({A: merged, ISSUE: {"stage_mark": ["assigned", "2026-03-02T09:00:00Z"]}})
    assert store.get_metas([A, ISSUE, B]) == {
        A: {"kept": "yes"},
        ISSUE: {"stage_mark": ["assigned", "2026-03-02T09:00:00Z"]},
        B: {},
    }
    store.put_metas({})


def test_promises_for_tickets_and_put_promises_match_the_one_ticket_methods(store):
    a1 = new_promise(A, "an update", T0, origin="cli", issues=(ISSUE,), due_at=T0 + timedelta(days=2))
    a2 = new_promise(A, "a fix", T0 + timedelta(hours=1), origin="cli", issues=(ISSUE, ISSUE2), due_at=T0)
    b1 = new_promise(B, "an update", T0, origin="cli", issues=(ISSUE2,), due_at=T0 + timedelta(days=1))
    store.put_promises([a2, b1, a1])
    got = store.promises_for_tickets([A, B, C])
    assert got == {A: [a1, a2], B: [b1], C: []}
    assert got[A] == store.promises_for_ticket(A)
    assert store.promises_for_issue(ISSUE2) == [b1, a2]  # oldest first
    # A changed promise replaces the stored one, and its issues with it.
    moved = dataclasses.replace(on_issue_resolved(a2, T0 + timedelta(hours=2)), issues=(ISSUE,))
    store.put_promises([moved, b1])
    assert store.get_promise(a2.id) == moved
    assert store.promises_for_issue(ISSUE2) == [b1]
    assert [p.id for p in store.promises_for_issue(ISSUE, active=False)] == [a1.id, a2.id]
    store.put_promises([])


def test_put_snapshots_keeps_a_newer_stored_snapshot(store):
    store.put_snapshot(ticket(A, "newer", T0 + timedelta(minutes=5)))
    store.put_snapshots([ticket(A, "older"), ticket(B, "first"), issue(ISSUE, "an issue")])
    got = store.get_snapshots([A, B, ISSUE])
    assert got[A].subject == "newer" and got[B].subject == "first" and got[ISSUE].title == "an issue"
    store.put_snapshots([ticket(A, "newest", T0 + timedelta(minutes=6))])
    assert store.get_snapshot(A).subject == "newest"
    assert store.find_issue_by_key("linear", "ENG-u1") == got[ISSUE]
    with pytest.raises(TypeError):
        store.put_snapshots(["not a record"])  # type: ignore[list-item]


def test_open_actions_of_groups_match_open_actions(store):
    store.enqueue(Action("k1", "zendesk", "1", TicketUpdate(note="a"), "g1"))
    store.enqueue(Action("k2", "zendesk", "1", TicketUpdate(note="b"), "g1"))
    store.enqueue(Action("k3", "zendesk", "2", TicketUpdate(note="c"), "g2"))
    store.enqueue(Action("k4", "zendesk", "3", TicketUpdate(note="d"), "g3"))
    done = next(r for r in store.list_outbox() if r.key == "k2")
    store.mark_done(done.id, {})
    got = store.open_actions_of_groups(["g1", "g2", "g3", "none"])
    assert got == {g: store.open_actions(g) for g in ("g1", "g2", "g3", "none")}
    assert [r.key for r in got["g1"]] == ["k1"] and got["none"] == []
    assert store.open_actions_of_groups([]) == {}


def test_unsent_keys_and_replace_payloads_match_replace_payload(store):
    for key in ("k1", "k2", "k3"):
        store.enqueue(Action(key, "zendesk", "1", TicketUpdate(note=key), "g"))
    store.check_before_send("k2")  # to be looked for before its first send: not rewritten
    done = next(r for r in store.list_outbox() if r.key == "k3")
    store.mark_done(done.id, {})
    assert store.unsent_keys(["k1", "k2", "k3", "none", "k1"]) == {"k1"}
    assert store.unsent_keys([]) == set()
    store.replace_payloads({"k1": {"note": "new"}, "k2": {"note": "new"}, "k3": {"note": "new"}})
    assert {r.key: r.payload for r in store.list_outbox()} == {
        "k1": {"note": "new"},
        "k2": {"note": "k2"},
        "k3": {"note": "k3"},
    }
    store.replace_payloads({})


def test_enqueue_many_queues_each_key_once_as_enqueue_does(store):
    store.enqueue(Action("k1", "zendesk", "1", TicketUpdate(note="before"), "g1"))
    actions = [
        Action("k1", "zendesk", "1", TicketUpdate(note="again"), "g1"),
        Action("k2", "zendesk", "2", TicketUpdate(note="two"), "g2"),
        Action("k3", "zendesk", "3", TicketUpdate(note="three"), "g3"),
        Action("k2", "zendesk", "2", TicketUpdate(note="twice"), "g2"),
    ]
    assert store.enqueue_many(actions) == [False, True, True, False]
    assert {r.key: r.payload["note"] for r in store.list_outbox()} == {"k1": "before", "k2": "two", "k3": "three"}
    assert [r.key for r in store.open_actions("g2")] == ["k2"]
    assert store.enqueue_many([]) == []
    assert store.enqueue_many(actions[:2]) == [False, False]


def test_enqueue_many_inserts_in_the_order_given_so_a_group_keeps_its_order(store):
    keys = [f"k{n}" for n in range(25, 0, -1)]  # not the keys' sort order
    got = store.enqueue_many([Action(k, "zendesk", "1", TicketUpdate(note=k), "g1") for k in keys])
    assert got == [True] * len(keys)
    assert [r.key for r in store.open_actions("g1")] == keys
    assert [r.payload["note"] for r in store.list_outbox()] == keys


def test_promises_for_issues_match_promises_for_issue(store):
    a1 = new_promise(A, "an update", T0, origin="cli", issues=(ISSUE,), due_at=T0 + timedelta(days=2))
    b1 = new_promise(B, "a fix", T0 - timedelta(hours=1), origin="cli", issues=(ISSUE, ISSUE2), due_at=T0)
    store.put_promises([a1, b1])
    store.put_promise(on_issue_resolved(a1, T0))
    kept = dataclasses.replace(b1, state=PromiseState.KEPT)
    store.put_promise(kept)
    for active in (True, False):
        got = store.promises_for_issues([ISSUE, ISSUE2, Ref("linear", "none")], active=active)
        assert got == {ref: store.promises_for_issue(ref, active=active) for ref in got}
    assert store.promises_for_issues([ISSUE], active=False)[ISSUE] == [kept, store.get_promise(a1.id)]
    assert store.promises_for_issues([]) == {}


def test_add_events_adds_what_add_event_adds_in_order(store):
    first = store.add_event(Event("linked", "#1 linked", A, ISSUE, {"origin": "comment"}))
    events = [
        Event("issue_state", "ENG-u1 moved", None, ISSUE, {"from": "Todo", "to": "Done"}),
        Event("resolved", "#2: every linked issue is closed", B, ISSUE, {"reopen": True}),
        Event("quarantined", "a record", None, None, {}),
    ]
    store.add_events(events)
    store.add_events([])
    rows = store.events_since(0)
    assert rows[0].id == first and [r.id for r in rows] == sorted(r.id for r in rows)
    assert [(r.kind, r.summary, r.ticket, r.issue, r.detail) for r in rows[1:]] == [
        (e.kind, e.summary, e.ticket, e.issue, e.detail) for e in events
    ]
    assert all(r.at == T0 for r in rows)
    assert [r.kind for r in store.history(B)] == ["resolved"]
    assert store.add_event(Event("linked", "after", A)) > rows[-1].id


def test_snapshots_written_are_read_back_without_decoding(store, monkeypatch):
    from syncd import store as store_module

    cache = store_module._Decoded(maxsize=8)
    monkeypatch.setattr(store_module, "_snapshot", cache)
    decoded: list[str] = []
    decode = store_module._decode_snapshot
    monkeypatch.setattr(store_module, "_decode_snapshot", lambda data: decoded.append(data) or decode(data))
    written = [ticket(A, "one"), ticket(B, "two"), issue(ISSUE, "an issue")]
    store.put_snapshots(written)
    store.put_snapshot(ticket(C, "three"))
    got = store.get_snapshots([A, B, C, ISSUE])
    assert decoded == []  # the records written, primed by their text
    assert got == {A: written[0], B: written[1], C: ticket(C, "three"), ISSUE: written[2]}
    assert got[A] is written[0]
    # A newer stored snapshot kept instead of the one given is another text: read, it is decoded.
    store.put_snapshot(ticket(A, "newer", T0 + timedelta(minutes=5)))
    store.put_snapshots([ticket(A, "older")])
    assert store.get_snapshot(A).subject == "newer" and decoded == []
    cache.cache_clear()
    assert store.get_snapshot(A).subject == "newer" and len(decoded) == 1
    assert store.get_snapshot(A).subject == "newer" and len(decoded) == 1  # once per text


def test_the_decoded_snapshot_cache_is_bounded_and_primes_only_records_that_round_trip():
    from syncd import store as store_module
    from syncd.store import _Decoded, _json

    cache = _Decoded(maxsize=3)
    records = [ticket(Ref("zendesk", str(n)), f"s{n}") for n in range(5)]
    for record in records:
        cache.prime(_json(record), record)
    assert len(cache) == 3  # the least recently used went first
    assert cache(_json(records[4])) is records[4]
    assert cache(_json(records[0])) == records[0] and cache(_json(records[0])) is not records[0]
    # A time in another zone (or none) would come back as UTC: such a record is decoded when read.
    elsewhere = ticket(Ref("zendesk", "9"), "s9", T0.astimezone(timezone(timedelta(hours=2))))
    cache.cache_clear()
    cache.prime(_json(elsewhere), elsewhere)
    assert len(cache) == 0
    back = cache(_json(elsewhere))
    assert back == elsewhere and back.updated_at.tzinfo is timezone.utc
    assert store_module._snapshot.maxsize == 2048


def _link_queries(store) -> list[str]:
    """The link reads the store runs from now on (a list that grows)."""
    ran: list[str] = []
    run = store._run

    def counted(sql, params):
        if "FROM json_each(?) AS j JOIN links" in sql:
            ran.append(sql)
        return run(sql, params)

    store._run = counted
    return ran


def test_a_transaction_reads_a_ticket_s_links_once_until_one_is_added_or_ended(store):
    from syncd.records import Link

    store.add_link(Link(A, ISSUE, "comment"))
    store.add_link(Link(A, ISSUE2, "comment"))
    store.add_link(Link(B, ISSUE, "tag"))
    store.end_link(A, ISSUE2, "unlinked by hand")
    outside = store.links_for_tickets([A, B, C])
    ran = _link_queries(store)
    with store.transaction():
        every = store.links_for_tickets([A, B, C], active=False)
        assert [r.issue for r in every[A]] == [ISSUE, ISSUE2] and every[C] == []
        assert len(ran) == 1
        assert store.links_for_tickets([A, B, C]) == outside  # the active ones, from that read
        assert store.links_for_tickets([B, A], active=False) == {B: every[B], A: every[A]}
        assert len(ran) == 1
        got = store.links_for_tickets([A])
        got[A].append("not a link")  # a caller's list is its own
        assert store.links_for_tickets([A]) == {A: outside[A]} and len(ran) == 1
        store.add_link(Link(C, ISSUE2, "comment"))  # a link added: read again
        assert [r.issue for r in store.links_for_tickets([C])[C]] == [ISSUE2] and len(ran) == 2
        assert (
            store.links_for_tickets([A, C]) == {A: outside[A], C: store.links_for_ticket(C)} and len(ran) == 3
        )  # only A is asked for (all was forgotten)
        store.end_link(A, ISSUE, "unlinked by hand")  # a link ended: read again
        assert store.links_for_tickets([A]) == {A: []} and len(ran) == 4
        # Read active only, then all: the ended ones were not read, so they are asked for.
        assert [r.active for r in store.links_for_tickets([A], active=False)[A]] == [False, False] and len(ran) == 5
    store.links_for_tickets([A])
    store.links_for_tickets([A])
    assert len(ran) == 7  # outside a transaction every read asks the store
    with store.transaction():
        assert (
            store.links_for_tickets([A, B]) == {A: [], B: outside[B]} and len(ran) == 8
        )  # a new transaction reads anew


def test_a_rolled_back_transaction_leaves_no_links_read_behind(store):
    from syncd.records import Link

    store.add_link(Link(A, ISSUE, "comment"))
    ran = _link_queries(store)
    with pytest.raises(RuntimeError), store.transaction():
        store.links_for_tickets([A])
        raise RuntimeError("the page failed")
    with store.transaction():
        store.end_link(A, ISSUE, "gone")  # forgets, as any change does
    with store.transaction():
        assert store.links_for_tickets([A]) == {A: []}
    assert len(ran) == 2
