"""Chaos: ``syncd run`` killed at random points while people keep changing things.

The short version runs here; ``make chaos`` runs the long one (2,000 changes,
50+ kills). A failure names its seed: ``SYNCD_CHAOS_SEED=<seed>`` replays it.
"""

from __future__ import annotations

import collections
import os
import random

import pytest

from tools.chaos import Outcome, chaos_run, compare, generate

pytestmark = pytest.mark.e2e


def test_the_stream_is_reproducible_and_shaped_so_observation_order_does_not_matter():
    a = generate(11, changes=600, batch_size=30, tickets=40, issues=12)
    b = generate(11, changes=600, batch_size=30, tickets=40, issues=12)
    assert a.batches == b.batches and a.changes == 600
    assert generate(12, changes=600, batch_size=30, tickets=40, issues=12).batches != a.batches
    kinds = collections.Counter(c.kind for batch in a.batches for c in batch)
    assert set(kinds) == {"key_note", "attach", "new_ticket", "move", "assign", "note", "status"}
    links: dict[int, set[int]] = collections.defaultdict(set)
    for batch in a.batches:
        changed = [c.issue for c in batch if c.kind in ("move", "assign")]
        linking = [(c.ticket, c.issue) for c in batch if c.kind in ("key_note", "attach", "new_ticket")]
        assert len(changed) == len(set(changed)), "an issue changes at most once per batch"
        assert not set(changed) & {i for _, i in linking}, "a changed issue gets no new link in its batch"
        affected = [t for i in changed for t in links[i]]
        assert len(affected) == len(set(affected)), "a ticket is affected by one changed issue at most"
        assert not set(affected) & {t for t, _ in linking}, "an affected ticket gets no new link in its batch"
        for ticket, issue in linking:
            links[issue].add(ticket)
    assert {(t, i) for i, ts in links.items() for t in ts} == a.links


def outcome(notes=(), attachments=(), repeats=0):
    return Outcome(
        collections.Counter(notes),
        collections.Counter(attachments),
        {1: ("syncd_linked",)},
        {1: "ENG-1: Done"},
        repeats,
    )


def test_the_comparison_counts_missing_extra_and_repeated_writes():
    expected = outcome([(1, "Linked to ENG-1"), (1, "ENG-1 moved")], [("ENG-1", "ZENDESK/agent/tickets/1")])
    assert compare(expected, expected).ok
    doubled = outcome(
        [(1, "Linked to ENG-1"), (1, "Linked to ENG-1"), (1, "ENG-1 moved")], [("ENG-1", "ZENDESK/agent/tickets/1")]
    )
    result = compare(expected, doubled)
    assert not result.ok and result.extra == [(1, "Linked to ENG-1")] and not result.missing
    lost = outcome([(1, "Linked to ENG-1")], [])
    result = compare(expected, lost)
    assert not result.ok and len(result.missing) == 2
    assert not compare(expected, outcome(expected.notes, expected.attachments, repeats=1)).ok
    other_state = outcome(expected.notes, expected.attachments)
    other_state.fields[1] = "ENG-1: In Progress"
    assert compare(expected, other_state).state_mismatches == [(1, "ENG-1: Done", "ENG-1: In Progress")]


def test_killed_again_and_again_while_people_work_nothing_is_lost_or_duplicated(tmp_path):
    seed = int(os.environ.get("SYNCD_CHAOS_SEED") or random.SystemRandom().randrange(1, 2**31))
    print(f"chaos seed {seed} (replay: SYNCD_CHAOS_SEED={seed})")
    result = chaos_run(tmp_path, seed=seed, changes=300, kills=10, batch_size=30, tickets=40, issues=12, job_polls=0)
    c = result.comparison
    replay = f"seed {seed}; replay with SYNCD_CHAOS_SEED={seed}: {result.summary()}"
    assert result.kills >= 10 and result.hups >= 1 and result.terms >= 2, replay  # SIGHUP reloads lose nothing
    assert not result.crashes, (replay, result.crashes)
    assert not c.missing, (replay, c.missing[:5])
    assert not c.extra and not c.duplicates, (replay, c.extra[:5])
    assert not c.state_mismatches, (replay, c.state_mismatches[:5])
    assert not c.stream_problems, (replay, c.stream_problems[:5])
    assert c.expected == c.found > 100, replay
