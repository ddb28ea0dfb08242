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
