"""Three replicas on one PostgreSQL store, SIGKILLed at random with 10 % faults: the short chaos run.

The long one is `make chaos-replicas` (docs/scaling.md has its figures).
"""

from __future__ import annotations

import os
import random

import pytest

from tests import postgres
from tools.chaos_replicas import audit_leases, replica_chaos_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_three_replicas_killed_at_random_lose_nothing_repeat_nothing_and_never_share_a_feed(tmp_path):
    url = postgres.server_url()
    seed = int(os.environ.get("SYNCD_CHAOS_SEED") or random.SystemRandom().randrange(1, 2**31))
    print(f"replicas chaos seed {seed} (SYNCD_CHAOS_SEED={seed} replays it)")
    result = replica_chaos_run(
        tmp_path, url, seed=seed, changes=60, kills=10, batch_size=20, tickets=20, issues=8, lease_seconds=5.0
    )
    c = result.comparison
    assert c.ok, (c.missing[:3], c.extra[:3], c.state_mismatches[:3], c.stream_problems[:3])
    assert c.duplicates == 0 and not c.extra and not c.missing and c.expected == c.found > 40
    assert not result.crashes, result.crashes[:2]
    assert result.kills >= 10 and result.faults > 0
    assert result.audit.overlaps == []
    p99 = result.audit.p(0.99)
    assert p99 is None or p99 <= result.failover_bound, result.summary()


def test_the_lease_audit_finds_an_overlap_and_measures_failover():
    history = [
        {"feed": "poll:z", "holder": "a", "started_at": "2026-01-01T00:00:00.000000Z",
         "renewed_at": "2026-01-01T00:00:05.000000Z", "ended_at": "2026-01-01T00:00:07.000000Z",
         "end_reason": "expired"},
        {"feed": "poll:z", "holder": "b", "started_at": "2026-01-01T00:00:07.500000Z",
         "renewed_at": "2026-01-01T00:00:09.000000Z", "ended_at": "2026-01-01T00:00:10.000000Z",
         "end_reason": "released"},
        {"feed": "poll:z", "holder": "c", "started_at": "2026-01-01T00:00:09.000000Z",
         "renewed_at": "2026-01-01T00:00:09.000000Z", "ended_at": None, "end_reason": None},
    ]  # fmt: skip
    audit = audit_leases(history)
    assert audit.failovers == [2.5]  # a's last renewal at :05, b took over at :07.5
    assert len(audit.overlaps) == 1 and "c from" in audit.overlaps[0]  # c began while b still held it
