"""The records' JSON form: what the store keeps as snapshots."""

from __future__ import annotations

from datetime import datetime, timezone

from syncd.records import Issue, Ref, StateCategory, from_dict, to_dict

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=timezone.utc)


def test_an_issue_keeps_its_trackers_own_state_words():
    issue = Issue(
        Ref("gh", "1"),
        "acme/web#1",
        "u",
        "t",
        StateCategory.CANCELED,
        "Closed (not planned)",
        T0,
        native={"state": "closed", "reason": "not_planned"},
    )
    assert from_dict(to_dict(issue)) == issue


def test_a_snapshot_stored_before_native_was_kept_still_loads():
    old = to_dict(Issue(Ref("lin", "a"), "ENG-1", "u", "t", StateCategory.STARTED, "In Review", T0))
    del old["native"]
    assert from_dict(old).native == {}
