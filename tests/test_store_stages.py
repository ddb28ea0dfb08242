"""The stages table (migration 2): a ticket's follow-up stage and its history."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

from syncd.records import Ref, Stage
from syncd.store import Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
TICKET = Ref("zendesk", "7")


def test_stage_history_round_trips_and_is_replaced_as_a_whole(tmp_path):
    with Store(tmp_path / "s.db") as store:
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
    conn.execute("DROP TABLE stages")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert store.schema_version == 2
        store.put_stage(TICKET, [(Stage.WAITING, T0)])
        assert store.stage_history(TICKET) == [(Stage.WAITING, T0)]
