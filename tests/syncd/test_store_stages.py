"""The stages table (migration 2): a ticket's follow-up stage and its history."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

from syncd.records import Ref, Stage
from syncd.store import SCHEMA_VERSION, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
TICKET = Ref("zendesk", "7")


def test_stage_history_round_trips_and_is_replaced_as_a_whole(store_opener):
    with store_opener() as store:
        assert store.stage_history(TICKET) == []
        store.put_stage(TICKET, [(Stage.NEW, T0)])
        history = [(Stage.NEW, T0), (Stage.ASSIGNED, T0 + timedelta(hours=1))]
        store.put_stage(TICKET, history)
        assert store.stage_history(TICKET) == history
        assert store.stage_history(Ref("zendesk", "8")) == []


def test_a_version_1_store_gains_the_stages_table(tmp_path):
    path = tmp_path / "s.db"
    with Store(path):
        pass
    conn = sqlite3.connect(path)
    # What migrations 2 and later add.
    for table in ("promise_issues", "promises", "stages", "gone_issues", "leases", "lease_history"):
        conn.execute(f"DROP TABLE {table}")
    for column in ("claimed_by", "claimed_until"):
        conn.execute(f"ALTER TABLE outbox DROP COLUMN {column}")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.put_stage(TICKET, [(Stage.WAITING, T0)])
        assert store.stage_history(TICKET) == [(Stage.WAITING, T0)]


def test_replace_payload_changes_only_an_unsent_pending_action(store_opener):
    from syncd.writes import Action, TicketUpdate

    with store_opener() as store:
        store.enqueue(Action("k1", "zendesk", "7", TicketUpdate(note="a"), "g"))
        assert store.replace_payload("k1", {"note": "a", "add_tags": ["x"]})
        (row,) = store.list_outbox()
        assert row.payload == {"note": "a", "add_tags": ["x"]}
        store.mark_done(row.id, {})
        assert not store.replace_payload("k1", {"note": "b"})
        assert not store.replace_payload("nope", {"note": "b"})
        assert store.list_outbox()[0].payload == {"note": "a", "add_tags": ["x"]}


def test_histories_of_active_stages_are_read_a_page_at_a_time_in_ticket_order(tmp_path):
    t0 = datetime(2026, 3, 4, 13, 15, tzinfo=timezone.utc)
    with Store(tmp_path / "s.db") as store:
        with store.transaction():
            for n in range(25):
                stage = Stage.RESOLVED if n % 5 == 0 else Stage.ASSIGNED
                store.put_stage(Ref("zendesk", f"{n:03d}"), [(Stage.NEW, t0), (stage, t0 + timedelta(minutes=n))])
        seen, after, pages = [], None, 0
        while True:
            page = store.stage_histories_page(after, 7, [Stage.ASSIGNED.value])
            pages += 1
            seen += page
            if len(page) < 7:
                break
            after = page[-1][0]
        assert [ref.id for ref, _ in seen] == [f"{n:03d}" for n in range(25) if n % 5]
        assert pages == 3
        assert all(history == store.stage_history(ref) for ref, history in seen)
        assert store.stage_histories_page(None, 100, []) == []
